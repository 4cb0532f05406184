import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Observable, throwError, timer, switchMap } from 'rxjs';
import type { Message as GetMessage } from '../../lib/transport/transport.interface';
import { MessageHandler, RpcClient, UnrecoverableError, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, deferred, rabbitmqctl, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, closeConnections, drainUntil, sleep, startAppLogged, Tally, watchUnhandledRejections } from './helpers';

/**
 * RELIABILITY.md 12 (handler throws: retries, then dead-letter), 13 (undecodable body),
 * 14 (rejects / throws synchronously / erroring Observable: no unhandled rejection),
 * 15 (poison message bounded by a delivery limit) and 27 (one failing subscriber group).
 */
describe('reliability: handler failures', () => {
  let broker: Broker;
  const apps: INestApplicationContext[] = [];
  const releases: Array<() => void> = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    broker = await Broker.open();
  });

  afterAll(async () => {
    for (const release of releases) release();
    for (const app of apps) await app.close().catch(() => undefined);
    for (const proxy of proxies) await proxy.close();
    await broker.cleanup();
  });

  async function start(options: Parameters<typeof appModule>[0], providers: unknown[]) {
    const logger = new CaptureLogger();
    const app = await startAppLogged(appModule(options, { providers: providers as never[] }), logger);
    apps.push(app);
    return { app, client: app.get(RpcClient), logger };
  }

  function header(message: GetMessage, name: string): unknown {
    return message.properties.headers?.[name];
  }

  describe('12: a handler that throws', () => {
    const queue = unique('throws');
    const unrecoverable = unique('unrecoverable');
    const flaky = unique('flaky');
    const calls: Array<{ id: string; attempt: number; at: number }> = [];
    const unrecoverableCalls: number[] = [];
    const flakyCalls: Array<{ id: string; attempt: number }> = [];
    const flakyDone = new Tally();
    const longMessage = `boom ${'x'.repeat(5000)}`;

    class PaymentDeclined extends Error {
      override name = 'PaymentDeclined';
    }

    @Injectable()
    class Throwing {
      @MessageHandler({ queue, retry: { attempts: 3, delaysMs: [50, 100] } })
      alwaysFails(_payload: unknown, context: MessageContext) {
        calls.push({ id: context.messageId!, attempt: context.attempt, at: Date.now() });
        throw new PaymentDeclined(longMessage);
      }

      @MessageHandler({ queue: unrecoverable, retry: { attempts: 5, delaysMs: [50] } })
      givesUp(_payload: unknown, context: MessageContext) {
        unrecoverableCalls.push(context.attempt);
        throw new UnrecoverableError('this order can never be processed');
      }

      @MessageHandler({ queue: flaky, retry: { attempts: 3, delaysMs: [50] } })
      async flaky(_payload: unknown, context: MessageContext) {
        flakyCalls.push({ id: context.messageId!, attempt: context.attempt });
        if (context.attempt < 3) throw new Error(`transient failure ${context.attempt}`);
        flakyDone.see(context.messageId);
      }
    }

    let client: RpcClient;
    beforeAll(async () => {
      broker.queue(queue, [50, 100]);
      broker.queue(unrecoverable, [50]);
      broker.queue(flaky, [50]);
      ({ client } = await start({ serviceName: unique('svc-throws') }, [Throwing]));
    });

    it('is retried after the policy delays with context.attempt counting up, then dead-lettered with the error headers', async () => {
      const sent = 5;
      const ids: string[] = [];
      for (let i = 0; i < sent; i++) ids.push(await client.send(queue, { order: i }));
      const dead = await drainUntil(broker, `${queue}.dlq`, sent);
      const byId = (id: string) => calls.filter((c) => c.id === id);
      const gaps = ids.map((id) => {
        const tries = byId(id);
        return [tries[1].at - tries[0].at, tries[2].at - tries[1].at];
      });
      const figures = {
        sent,
        handlerCalls: calls.length,
        deadLettered: dead.length,
        stillQueued: await broker.depth(queue),
        retryQueues: (await broker.depth(`${queue}.retry.50ms`)) + (await broker.depth(`${queue}.retry.100ms`)),
        gapsMs: gaps,
      };
      console.log(`[reliability 12] always-throwing handler: ${JSON.stringify(figures)}`);
      for (const id of ids) expect(byId(id).map((c) => c.attempt)).toEqual([1, 2, 3]);
      for (const [first, second] of gaps) {
        expect(first).toBeGreaterThanOrEqual(45);
        expect(second).toBeGreaterThanOrEqual(95);
        expect(first).toBeLessThan(2000);
        expect(second).toBeLessThan(2000);
      }
      expect(dead).toHaveLength(sent); // no duplicate dead letters
      expect(figures.stillQueued + figures.retryQueues).toBe(0);
      expect(dead.map((m) => m.properties.messageId).sort()).toEqual([...ids].sort());
      for (const message of dead) {
        expect(header(message, 'x-error-name')).toBe('PaymentDeclined');
        const text = String(header(message, 'x-error-message'));
        expect(text.length).toBe(1024);
        expect(text.startsWith('boom xxx')).toBe(true);
        expect(Number(header(message, 'x-attempts'))).toBe(3);
        expect(header(message, 'x-original-queue')).toBe(queue);
        expect(JSON.parse(message.content.toString())).toHaveProperty('order');
      }
    }, 30_000);

    it('UnrecoverableError goes to the dead-letter queue at once, without retries', async () => {
      const id = await client.send(unrecoverable, { n: 1 });
      const [dead, ...extra] = await drainUntil(broker, `${unrecoverable}.dlq`, 1);
      expect(extra).toHaveLength(0);
      expect(unrecoverableCalls).toEqual([1]);
      expect(dead.properties.messageId).toBe(id);
      expect(header(dead, 'x-error-name')).toBe('UnrecoverableError');
      expect(header(dead, 'x-error-message')).toBe('this order can never be processed');
      expect(Number(header(dead, 'x-attempts'))).toBe(1);
      expect(header(dead, 'x-original-queue')).toBe(unrecoverable);
    });

    it('a handler that fails twice and then succeeds is handled once, nothing dead-lettered', async () => {
      const ids = await Promise.all(Array.from({ length: 5 }, (_, i) => client.send(flaky, { i })));
      await waitFor(() => ids.every((id) => flakyDone.handled.has(id)), 'every flaky message to succeed on its third try');
      await sleep(300);
      console.log(
        `[reliability 12] flaky handler: sent 5, handled ${flakyDone.handled.size}, calls ${flakyCalls.length}, duplicates ${flakyDone.duplicates}, dead-lettered ${await broker.depth(`${flaky}.dlq`)}`,
      );
      expect(flakyDone.duplicates).toBe(0);
      expect(flakyCalls).toHaveLength(15);
      expect(await broker.depth(`${flaky}.dlq`)).toBe(0);
    });
  });

  describe('12 + 32: a fault between the dead-letter copy and the ack of the original', () => {
    /**
     * A handler that fails with UnrecoverableError once the test releases it, so the test can
     * inject its fault while the message is in flight, just before its dead-letter copy is written.
     */
    async function gatedFailure(label: string, options: Parameters<typeof appModule>[0] = {}) {
      const serviceName = unique(`svc-${label}`);
      const queue = broker.queue(unique(label), []);
      const started = deferred();
      const gate = deferred();
      releases.push(() => gate.resolve());
      const calls: string[] = [];
      @Injectable()
      class FailsWhenReleased {
        @MessageHandler({ queue, retry: false })
        async handle(_payload: unknown, context: MessageContext) {
          calls.push(context.messageId!);
          started.resolve();
          await gate.promise;
          throw new UnrecoverableError('belongs in the dead-letter queue');
        }
      }
      const { app, client, logger } = await start(
        { serviceName, reconnect: { initialDelayMs: 50, maxDelayMs: 500 }, publishTimeoutMs: 15_000, ...options },
        [FailsWhenReleased],
      );
      return {
        app,
        client,
        logger,
        serviceName,
        queue,
        dlq: `${queue}.dlq`,
        started: started.promise,
        release: () => gate.resolve(),
        calls,
      };
    }

    async function unacked(queue: string): Promise<number> {
      const line = (await rabbitmqctl('list_queues', 'name', 'messages_unacknowledged'))
        .split('\n')
        .map((l) => l.trim().split(/\s+/))
        .find(([name]) => name === queue);
      return Number(line?.[1] ?? 0);
    }

    /** Every message of `queue` with id `id`, taken off it; none if the queue does not exist. */
    async function take(queue: string, id: string): Promise<GetMessage[]> {
      const channel = await broker.connection.createChannel();
      channel.on('error', () => undefined);
      const got: GetMessage[] = [];
      try {
        for (let message = await channel.get(queue, { noAck: true }); message; message = await channel.get(queue, { noAck: true })) {
          if (message.properties.messageId === id) got.push(message);
        }
      } catch {
        // 404: the queue is gone, and what it held with it.
      } finally {
        await channel.close().catch(() => undefined);
      }
      return got;
    }

    /** Closes the app (what it had not acked goes back to the queue), then counts where the message is. */
    async function whereItEnds(app: INestApplicationContext, queue: string, dlq: string, id: string) {
      await app.close();
      const queued = (await take(queue, id)).length;
      const dead = await take(dlq, id);
      return { queued, deadLettered: dead.length, dead };
    }

    it('the publisher connection dies with the dead-letter copy unconfirmed: the original stays unacked, the copy goes again, the message ends in the DLQ', async () => {
      const proxy = await TcpProxy.start();
      proxies.push(proxy);
      const { app, client, serviceName, queue, dlq, started, release, calls, logger } = await gatedFailure('dlq-cut', { uri: proxy.url() });
      const id = await client.send(queue, { n: 1 });
      await started;
      // What the publisher connection sends from now on stays in the proxy: the copy is written by
      // the app but never reaches the broker, and no confirm can come back for it.
      expect(proxy.holdSending(`${serviceName}:publisher`)).toBe(1);
      release();
      await waitFor(() => proxy.heldFromClients > 0, 'the dead-letter copy to be written');
      await sleep(300); // an ack that did not wait for the confirm reaches the broker meanwhile
      const unackedWhileUnconfirmed = await unacked(queue);
      expect(proxy.cutWhere(`${serviceName}:publisher`)).toBe(1);
      await waitFor(async () => (await broker.depth(dlq)) > 0, 'the copy published again after the reconnect', 20_000);
      await waitFor(async () => (await unacked(queue)) === 0, 'the original acked once the copy was confirmed', 20_000);
      const ends = await whereItEnds(app, queue, dlq, id);
      const figures = { unackedWhileUnconfirmed, handlerCalls: calls.length, queued: ends.queued, deadLettered: ends.deadLettered };
      console.log(`[reliability 12] publisher connection lost between the dead-letter copy and its confirm: ${JSON.stringify(figures)}`);
      expect(unackedWhileUnconfirmed).toBe(1);
      expect(ends.queued + ends.deadLettered).toBeGreaterThanOrEqual(1); // never neither
      expect(ends.deadLettered).toBeGreaterThanOrEqual(1); // at-least-once: a second copy is a duplicate, not a loss
      expect(ends.dead[0].properties.headers?.['x-error-name']).toBe('UnrecoverableError');
      expect(logger.matching(/publisher connection .* was lost/).length).toBeGreaterThanOrEqual(1);
    }, 60_000);

    it('the dead-letter queue is deleted before the copy is written: the copy is not silently dropped; the message ends in the DLQ, or at worst back in its queue', async () => {
      const { app, client, queue, dlq, started, release, calls } = await gatedFailure('dlq-gone');
      const id = await client.send(queue, { n: 1 });
      await started;
      // An operator deletes the dead-letter queue: the copy has nowhere to go until it is declared again.
      await broker.channel.deleteQueue(dlq);
      release();
      const settled = await waitFor(
        async () => (await broker.depth(dlq)) > 0,
        'the message in the re-declared dead-letter queue',
        15_000,
      ).then(
        () => 'dead-lettered',
        () => 'not in the dead-letter queue after 15 s',
      );
      const ends = await whereItEnds(app, queue, dlq, id);
      const figures = {
        settled,
        handlerCalls: calls.length,
        queued: ends.queued,
        deadLettered: ends.deadLettered,
        lost: ends.queued + ends.deadLettered === 0 ? 1 : 0,
      };
      console.log(`[reliability 12/32] dead-letter queue deleted before the copy: ${JSON.stringify(figures)}`);
      expect(ends.queued + ends.deadLettered).toBeGreaterThanOrEqual(1); // never neither
      expect(ends.deadLettered).toBeGreaterThanOrEqual(1); // where it belongs (RELIABILITY.md 32)
    }, 60_000);
  });

  describe('13: a body that cannot be decoded', () => {
    const queue = unique('undecodable');
    const handled: unknown[] = [];
    @Injectable()
    class Decoding {
      @MessageHandler({ queue, retry: { attempts: 3, delaysMs: [50] } })
      handle(payload: unknown) {
        handled.push(payload);
      }
    }

    it('bad JSON and an unknown content type are dead-lettered at once; the next good message is handled', async () => {
      broker.queue(queue, [50]);
      await start({ serviceName: unique('svc-decode') }, [Decoding]);
      broker.publishRaw(queue, '{"not": json', { contentType: 'application/json', messageId: 'bad-json' });
      broker.publishRaw(queue, '<order id="1"/>', { contentType: 'text/xml', messageId: 'xml' });
      broker.publishRaw(queue, 'plain {{ garbage', { messageId: 'no-content-type' });
      broker.publishRaw(queue, JSON.stringify({ good: true }), { contentType: 'application/json', messageId: 'good' });
      await waitFor(() => handled.length === 1, 'the good message');
      const dead = await drainUntil(broker, `${queue}.dlq`, 3);
      console.log(`[reliability 13] undecodable bodies: sent 4, handled ${handled.length}, dead-lettered ${dead.length}`);
      expect(handled).toEqual([{ good: true }]);
      expect(dead.map((m) => m.properties.messageId).sort()).toEqual(['bad-json', 'no-content-type', 'xml']);
      for (const message of dead) {
        expect(header(message, 'x-error-name')).toBe('DecodeError');
        expect(Number(header(message, 'x-attempts'))).toBe(1);
        expect(header(message, 'x-original-queue')).toBe(queue);
      }
      expect(
        String(
          header(
            dead.find((m) => m.properties.messageId === 'xml')!,
            'x-error-message',
          ),
        ),
      ).toContain('text/xml');
      // The original bytes are kept for whoever inspects the dead letter.
      expect(dead.find((m) => m.properties.messageId === 'bad-json')!.content.toString()).toBe('{"not": json');
      expect(await broker.depth(`${queue}.retry.50ms`)).toBe(0);
    });
  });

  describe('14: failing handlers of every shape', () => {
    it('async reject, sync throw, a thrown string, an Observable erroring at once or later: no unhandled rejection; all dead-lettered', async () => {
      const queues = {
        rejects: broker.queue(unique('rejects'), []),
        throwsSync: broker.queue(unique('throws-sync'), []),
        throwsString: broker.queue(unique('throws-string'), []),
        observable: broker.queue(unique('obs-error'), []),
        observableLater: broker.queue(unique('obs-error-later'), []),
      };
      const calls = new Map<string, number>();
      const count = (key: string) => calls.set(key, (calls.get(key) ?? 0) + 1);
      @Injectable()
      class Shapes {
        @MessageHandler({ queue: queues.rejects, retry: false })
        async rejects() {
          count('rejects');
          await sleep(1);
          throw new Error('async failure');
        }
        @MessageHandler({ queue: queues.throwsSync, retry: false })
        throwsSync() {
          count('throwsSync');
          throw new TypeError('sync failure');
        }
        @MessageHandler({ queue: queues.throwsString, retry: false })
        throwsString() {
          count('throwsString');
          throw 'a bare string';
        }
        @MessageHandler({ queue: queues.observable, retry: false })
        observable() {
          count('observable');
          return throwError(() => new RangeError('observable failure'));
        }
        @MessageHandler({ queue: queues.observableLater, retry: false })
        observableLater(): Observable<never> {
          count('observableLater');
          return timer(5).pipe(switchMap(() => throwError(() => new Error('late observable failure'))));
        }
      }
      const watcher = watchUnhandledRejections();
      try {
        const { client } = await start({ serviceName: unique('svc-shapes') }, [Shapes]);
        const perQueue = 4;
        for (const queue of Object.values(queues)) {
          await Promise.all(Array.from({ length: perQueue }, (_, i) => client.send(queue, { i })));
        }
        const dead: Record<string, GetMessage[]> = {};
        for (const [key, queue] of Object.entries(queues)) dead[key] = await drainUntil(broker, `${queue}.dlq`, perQueue);
        await sleep(200);
        const summary = Object.fromEntries(
          Object.keys(queues).map((k) => [
            k,
            { calls: calls.get(k), deadLettered: dead[k].length, errorName: header(dead[k][0], 'x-error-name') },
          ]),
        );
        const unhandled = await watcher.settled();
        console.log(`[reliability 14] failing handler shapes: ${JSON.stringify(summary)}; unhandled rejections: ${unhandled.length}`);
        expect(unhandled).toEqual([]);
        for (const key of Object.keys(queues)) {
          expect(calls.get(key)).toBe(perQueue);
          expect(dead[key]).toHaveLength(perQueue);
        }
        expect(header(dead.rejects[0], 'x-error-name')).toBe('Error');
        expect(header(dead.throwsSync[0], 'x-error-name')).toBe('TypeError');
        expect(String(header(dead.throwsString[0], 'x-error-message'))).toContain('a bare string');
        expect(header(dead.observable[0], 'x-error-name')).toBe('RangeError');
        expect(header(dead.observableLater[0], 'x-error-message')).toBe('late observable failure');
      } finally {
        await watcher.stop();
      }
    }, 30_000);
  });

  describe('15: a poison message that kills its consumer on every delivery', () => {
    it('is dead-lettered with DeliveryLimitError after maxRedeliveries, not redelivered forever', async () => {
      const serviceName = unique('svc-poison');
      const queue = broker.queue(unique('poison'));
      const calls: Array<{ attempt: number; redelivered: boolean; redeliveries: unknown }> = [];
      let release!: () => void;
      const never = new Promise<void>((resolve) => (release = resolve));
      releases.push(release);
      @Injectable()
      class Poisoned {
        @MessageHandler({ queue })
        async handle(_payload: unknown, context: MessageContext) {
          calls.push({ attempt: context.attempt, redelivered: context.redelivered, redeliveries: context.headers['x-redeliveries'] });
          await never; // "crashes": it never finishes, and the test kills its connection under it
        }
      }
      const maxRedeliveries = 2;
      await start({ serviceName, maxRedeliveries, shutdownTimeoutMs: 500, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [Poisoned]);
      broker.publishRaw(queue, JSON.stringify({ poison: true }), {
        contentType: 'application/json',
        messageId: 'poison-1',
        persistent: true,
      });

      let kills = 0;
      const dlq = `${queue}.dlq`;
      for (;;) {
        await waitFor(
          async () => calls.length > kills || (await broker.depth(dlq)) > 0,
          'the poison message to be delivered again or dead-lettered',
          15_000,
        );
        if ((await broker.depth(dlq)) > 0) break;
        expect(kills).toBeLessThan(maxRedeliveries + 3); // bounded: it must not loop forever
        expect(await closeConnections(serviceName, 'consumer', 'reliability test: the consumer dies')).toBe(1);
        kills++;
      }
      const dead = await drainUntil(broker, dlq, 1);
      const figures = { kills, handlerCalls: calls.length, deadLettered: dead.length, stillQueued: await broker.depth(queue), calls };
      console.log(`[reliability 15] poison message: ${JSON.stringify(figures)}`);
      expect(dead).toHaveLength(1);
      expect(dead[0].properties.messageId).toBe('poison-1');
      expect(header(dead[0], 'x-error-name')).toBe('DeliveryLimitError');
      expect(header(dead[0], 'x-original-queue')).toBe(queue);
      expect(calls).toHaveLength(maxRedeliveries + 1);
      expect(kills).toBe(maxRedeliveries + 1);
      expect(figures.stillQueued).toBe(0);
    }, 60_000);
  });

  describe('27: pub/sub with one failing subscriber group', () => {
    it('the failing group dead-letters its copies; the other groups get every event, on time', async () => {
      const exchange = broker.exchange(unique('orders-events'));
      const failing = broker.queue(unique('sub-failing'), [50]);
      const good = broker.queue(unique('sub-good'));
      const slow = broker.queue(unique('sub-slow'));
      const goodTally = new Tally();
      const slowTally = new Tally();
      let failingCalls = 0;
      @Injectable()
      class Subscribers {
        @MessageHandler({ queue: failing, exchange, routingKey: 'order.*', retry: { attempts: 2, delaysMs: [50] } })
        fails() {
          failingCalls++;
          throw new Error('this subscriber is broken');
        }
        @MessageHandler({ queue: good, exchange, routingKey: 'order.*' })
        ok(_payload: unknown, context: MessageContext) {
          goodTally.see(context.messageId);
        }
        @MessageHandler({ queue: slow, exchange, routingKey: 'order.#', prefetch: 5 })
        async slowly(_payload: unknown, context: MessageContext) {
          await sleep(20);
          slowTally.see(context.messageId);
        }
      }
      const { client } = await start({ serviceName: unique('svc-pubsub') }, [Subscribers]);
      const events = 40;
      const started = Date.now();
      const ids = await Promise.all(Array.from({ length: events }, (_, i) => client.publish(exchange, 'order.created', { i })));
      await waitFor(() => ids.every((id) => goodTally.handled.has(id)), 'the good group to get every event');
      const goodMs = Date.now() - started;
      await waitFor(() => ids.every((id) => slowTally.handled.has(id)), 'the slow group to get every event');
      const dead = await drainUntil(broker, `${failing}.dlq`, events);
      const figures = {
        published: events,
        good: { handled: goodTally.handled.size, duplicates: goodTally.duplicates, allWithinMs: goodMs },
        slow: { handled: slowTally.handled.size, duplicates: slowTally.duplicates },
        failing: { calls: failingCalls, deadLettered: dead.length },
      };
      console.log(`[reliability 27] pub/sub with a failing group: ${JSON.stringify(figures)}`);
      expect(goodTally.handled.size).toBe(events);
      expect(slowTally.handled.size).toBe(events);
      expect(goodTally.duplicates + slowTally.duplicates).toBe(0);
      expect(dead).toHaveLength(events);
      expect(failingCalls).toBe(events * 2);
      expect(goodMs).toBeLessThan(3000);
    }, 30_000);
  });
});
