import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, PublishTimeoutError, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import {
  CaptureLogger,
  connectionsOf,
  memoryAlarmActive,
  outcome,
  readWatermark,
  setWatermark,
  startAppLogged,
  Tally,
  within,
} from './helpers';

/**
 * RELIABILITY.md 5: a broker memory alarm blocks publishers. The alarm is raised for real with
 * `rabbitmqctl set_vm_memory_high_watermark 0` and ALWAYS restored to the value read before (in
 * `finally`, and again in afterAll should the test be cut short). The window is kept to a few
 * seconds: the broker is shared.
 */
describe('reliability: broker memory alarm', () => {
  let broker: Broker;
  let app: INestApplicationContext | undefined;
  let original: string[] | undefined;

  beforeAll(async () => {
    broker = await Broker.open();
  });

  afterAll(async () => {
    if (original) await setWatermark(original);
    await app?.close().catch(() => undefined);
    await broker.cleanup();
  });

  it('5: publishes wait and reject with PublishTimeoutError; consumers keep consuming what was queued; the watermark is restored', async () => {
    const serviceName = unique('svc-alarm');
    const queue = broker.queue(unique('alarm'));
    const tally = new Tally();
    const handledAt: number[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    @Injectable()
    class Gated {
      @MessageHandler({ queue, prefetch: 1 })
      async handle(_payload: unknown, context: MessageContext) {
        await gate;
        tally.see(context.messageId);
        handledAt.push(Date.now());
      }
    }
    app = await startAppLogged(appModule({ serviceName }, { providers: [Gated] }), new CaptureLogger());
    const client = app.get(RpcClient);
    const queued = 20;
    await Promise.all(Array.from({ length: queued }, (_, i) => client.send(queue, { i }, { messageId: `queued-${i}` })));

    original = await readWatermark();
    type Sent = Awaited<ReturnType<typeof outcome<string>>> & { id: string; wave: number };
    const sending: Array<Promise<Sent>> = [];
    const ids: string[] = [];
    const send = (id: string, wave: number, timeoutMs: number) =>
      ids.push(id) && sending.push(outcome(client.send(queue, { id }, { messageId: id, timeoutMs })).then((r) => ({ ...r, id, wave })));
    let alarmAt = 0;
    let restoreAt = 0;
    let atDeadline: Sent[];
    try {
      await setWatermark(['0']);
      await waitFor(() => memoryAlarmActive(), 'the memory alarm', 10_000);
      alarmAt = Date.now();
      // Wave 1: sent the moment the alarm is up (the publisher has not heard of it yet).
      for (let i = 0; i < 5; i++) send(`blocked-${i}`, 1, 1500);
      open(); // the consumer works through what was queued, during the alarm
      await new Promise((resolve) => setTimeout(resolve, 500));
      // Wave 2: sent once the broker has had time to tell the publisher it is blocked.
      for (let i = 0; i < 3; i++) send(`blocked-late-${i}`, 2, 1000);
      await waitFor(() => tally.handled.size >= queued, 'the queued messages to be consumed during the alarm', 3000).catch(() => undefined);
      // Every deadline has passed by alarm + 2.5 s (+0.5 s slack): take stock before restoring.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, alarmAt + 3000 - Date.now())));
      atDeadline = await settledSoFar(sending, ids);
    } finally {
      restoreAt = Date.now();
      await setWatermark(original);
    }
    expect(await readWatermark()).toEqual(original);
    await waitFor(async () => !(await memoryAlarmActive()), 'the alarm to clear', 10_000);
    const final = await within(Promise.all(sending), 10_000, [] as Sent[]);

    const handledDuringAlarm = handledAt.filter((t) => t >= alarmAt && t <= restoreAt).length;
    const describe = (s: Sent, from: number) => ({
      id: s.id,
      ok: s.ok,
      afterMs: s.at - from,
      error: s.ok ? undefined : String((s as { error: unknown }).error).slice(0, 100),
    });
    const figures = {
      alarmWindowMs: restoreAt - alarmAt,
      queuedBefore: queued,
      handledDuringAlarm,
      atDeadlines: atDeadline.map((s) => describe(s, alarmAt)),
      finally: final.map((s) => describe(s, alarmAt)),
    };
    console.log(`[reliability 5] memory alarm: ${JSON.stringify(figures)}`);

    // Publishing resumes after the alarm.
    const after = await client.send(queue, { after: 'alarm' }, { timeoutMs: 10_000 });
    await waitFor(() => tally.handled.has(after), 'a message after the alarm');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const blockedDelivered = [...tally.handled].filter((id) => id.startsWith('blocked-'));
    console.log(
      `[reliability 5] sends made during the alarm and delivered after it: ${blockedDelivered.length} (${blockedDelivered.join(', ')}); queued ${await broker.depth(queue)}`,
    );

    // Consumers were not blocked: everything queued before the alarm was handled during it.
    expect(handledDuringAlarm).toBe(queued);
    // Every send made during the alarm had rejected with PublishTimeoutError by its deadline.
    expect(atDeadline.map((s) => s.id)).toEqual([
      ...Array.from({ length: 5 }, (_, i) => `blocked-${i}`),
      ...Array.from({ length: 3 }, (_, i) => `blocked-late-${i}`),
    ]);
    for (const s of atDeadline) {
      const error = (s as { error?: unknown }).error;
      expect({ id: s.id, rejectedWithPublishTimeout: error instanceof PublishTimeoutError, error: String(error) }).toMatchObject({
        id: s.id,
        rejectedWithPublishTimeout: true,
      });
    }
  }, 60_000);

  it('42: app.close() during a memory alarm, with the publisher blocked and a send unconfirmed, returns in bounded time', async () => {
    const serviceName = unique('svc-alarm-close');
    const queue = broker.queue(unique('alarm-close'));
    @Injectable()
    class Quick {
      @MessageHandler({ queue })
      handle() {}
    }
    const closing = await startAppLogged(appModule({ serviceName, shutdownTimeoutMs: 1000 }, { providers: [Quick] }), new CaptureLogger());
    const client = closing.get(RpcClient);
    await client.send(queue, { before: 'alarm' });
    original = await readWatermark();
    let closedInMs: number;
    try {
      await setWatermark(['0']);
      await waitFor(() => memoryAlarmActive(), 'the memory alarm', 10_000);
      // A publish during the alarm makes RabbitMQ block the publisher's connection: it then answers
      // neither the publish nor a channel or connection close.
      const stuck = outcome(client.send(queue, { during: 'alarm' }, { timeoutMs: 30_000 }));
      await waitFor(
        async () => (await connectionsOf(serviceName, 'publisher')).some((c) => c.state === 'blocked'),
        'the publisher connection to be blocked',
        10_000,
      );
      const startedAt = Date.now();
      await within(closing.close(), 20_000, undefined);
      closedInMs = Date.now() - startedAt;
      console.log(
        `[reliability 42] close() during a memory alarm took ${closedInMs} ms; the send made during it: ${JSON.stringify(await within(stuck, 1000, 'still pending'))}`,
      );
    } finally {
      await setWatermark(original);
    }
    // shutdownTimeoutMs (1 s) + a channel close (2 s) + the connection close (3 s), with slack.
    expect(closedInMs).toBeLessThan(9000);
  }, 60_000);
});

/** The outcomes of the sends that have settled by now; the others are reported as still pending. */
async function settledSoFar<T extends { id: string }>(promises: Array<Promise<T>>, ids: string[]): Promise<T[]> {
  const pending = Symbol('pending');
  const out: T[] = [];
  for (const [i, p] of promises.entries()) {
    const r = await Promise.race([p, Promise.resolve(pending)]);
    out.push(r === pending ? ({ id: ids[i], ok: false, error: 'still pending', at: Date.now() } as unknown as T) : (r as T));
  }
  return out;
}
