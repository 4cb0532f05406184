import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { ExchangeNotFoundError, MessageHandler, MessagingError, RpcClient, TopologyError, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, connectionsOf, outcome, produce, sleep, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md 7 (queue deleted under a consumer), 8 (a channel-level error in one handler),
 * 9 (publish to a missing exchange) and 10 (a queue declared earlier with other arguments).
 */
describe('reliability: topology faults', () => {
  let broker: Broker;
  const apps: INestApplicationContext[] = [];
  const proxies: TcpProxy[] = [];

  beforeAll(async () => {
    broker = await Broker.open();
  });

  afterAll(async () => {
    for (const app of apps) await app.close().catch(() => undefined);
    for (const proxy of proxies) await proxy.close();
    await broker.cleanup();
  });

  /** An app with two handlers, A and B, each counting what it handled and when. */
  async function twoHandlerApp(label: string, reconnect = { initialDelayMs: 50, maxDelayMs: 1000 }, extra: Record<string, unknown> = {}) {
    const serviceName = unique(`svc-${label}`);
    const queueA = broker.queue(unique(`${label}-a`));
    const queueB = broker.queue(unique(`${label}-b`));
    const a = new Tally();
    const b = new Tally();
    const bTimes: number[] = [];
    @Injectable()
    class Handlers {
      @MessageHandler({ queue: queueA })
      handleA(_payload: unknown, context: MessageContext) {
        a.see(context.messageId);
      }
      @MessageHandler({ queue: queueB })
      handleB(_payload: unknown, context: MessageContext) {
        b.see(context.messageId);
        bTimes.push(Date.now());
      }
    }
    const logger = new CaptureLogger();
    const app = await startAppLogged(appModule({ serviceName, reconnect, ...extra }, { providers: [Handlers] }), logger);
    apps.push(app);
    return { app, client: app.get(RpcClient), serviceName, queueA, queueB, a, b, bTimes, logger };
  }

  function gapWithin(times: number[], from: number, to: number): number {
    const inside = times.filter((t) => t >= from && t <= to);
    let gap = 0;
    for (let i = 1; i < inside.length; i++) gap = Math.max(gap, inside[i] - inside[i - 1]);
    return gap;
  }

  it('7: a queue deleted under its consumer is re-declared and consumed again; the other handler is unaffected', async () => {
    const { client, serviceName, queueA, queueB, a, b, bTimes, logger } = await twoHandlerApp('deleted');
    const consumerBefore = await connectionsOf(serviceName, 'consumer');
    const first = await client.send(queueA, { n: 1 });
    await waitFor(() => a.handled.has(first), 'A to handle a message before the delete');

    const total = 400;
    const producing = produce((i, messageId) => client.send(queueB, { i }, { messageId }), total, {
      concurrency: 2,
      spacingMs: 10,
      prefix: 'b',
    });
    await waitFor(() => b.handled.size >= 50, 'B to be busy');
    const deletedAt = Date.now();
    await broker.channel.deleteQueue(queueA);
    await waitFor(() => logger.firstAt(/cancelled the consumer/, deletedAt) !== undefined, 'the broker cancel to be noticed');
    await waitFor(() => broker.exists(queueA), `${queueA} to be declared again`);
    const redeclaredMs = Date.now() - deletedAt;
    const second = await client.send(queueA, { n: 2 });
    await waitFor(() => a.handled.has(second), 'A to handle a message after the delete');
    const resumedMs = Date.now() - deletedAt;

    const results = await producing;
    const confirmed = results.filter((r) => r.ok).map((r) => r.id);
    await waitFor(() => confirmed.every((id) => b.handled.has(id)), 'B to handle everything');
    const figures = {
      A: { redeclaredMs, resumedMs },
      B: {
        sent: total,
        confirmed: confirmed.length,
        handled: b.handled.size,
        duplicates: b.duplicates,
        lost: confirmed.filter((id) => !b.handled.has(id)).length,
        largestGapAroundDeleteMs: gapWithin(bTimes, deletedAt - 500, deletedAt + 1500),
      },
    };
    console.log(`[reliability 7] queue deleted under a consumer: ${JSON.stringify(figures)}`);
    expect(confirmed).toHaveLength(total);
    expect(figures.B.lost).toBe(0);
    expect(figures.B.largestGapAroundDeleteMs).toBeLessThan(500);
    // The connection was not touched: only the handler's consumer came back.
    expect((await connectionsOf(serviceName, 'consumer')).map((c) => c.pid)).toEqual(consumerBefore.map((c) => c.pid));
  }, 45_000);

  it("8: a 406 on one handler's channel (its queue re-declared with other arguments) rebuilds only that channel; the other handler keeps consuming", async () => {
    const { client, serviceName, queueA, queueB, a, b, bTimes, logger } = await twoHandlerApp('chan406', {
      initialDelayMs: 300,
      maxDelayMs: 1000,
    });
    const connectionsBefore = (await connectionsOf(serviceName)).map((c) => c.pid).sort();
    const total = 600;
    const producing = produce((i, messageId) => client.send(queueB, { i }, { messageId }), total, {
      concurrency: 2,
      spacingMs: 10,
      prefix: 'b',
    });
    await waitFor(() => b.handled.size >= 50, 'B to be busy');

    // A's queue disappears and comes back with an argument A's handler does not declare:
    // A's re-declare gets 406 PRECONDITION_FAILED, which closes A's channel (not the connection).
    const faultAt = Date.now();
    await broker.channel.deleteQueue(queueA);
    await broker.channel.assertQueue(queueA, { durable: true, arguments: { 'x-max-length': 5 } });
    await waitFor(() => logger.firstAt(/PRECONDITION_FAILED/, faultAt) !== undefined, "A's channel to fail with 406", 10_000);
    const sent406 = await outcome(client.send(queueB, { during: '406' }, { messageId: 'b-during-406' }));
    expect(sent406.ok).toBe(true);
    await sleep(1000); // A keeps failing to re-declare meanwhile, with backoff

    // The conflicting queue goes away: A declares its own queue again and consumes.
    const fixedAt = Date.now();
    await broker.channel.deleteQueue(queueA);
    await waitFor(() => broker.exists(queueA), `${queueA} re-declared by the app`, 10_000);
    const after = await client.send(queueA, { n: 'after' });
    await waitFor(() => a.handled.has(after), 'A to consume again', 10_000);
    const aBackMs = Date.now() - fixedAt;

    const results = await producing;
    const confirmed = results.filter((r) => r.ok).map((r) => r.id);
    await waitFor(() => confirmed.every((id) => b.handled.has(id)) && b.handled.has('b-during-406'), 'B to handle everything');
    const failures406 = logger.matching(/PRECONDITION_FAILED/).length;
    const figures = {
      A: { failedRedeclares406: failures406, backAfterFixMs: aBackMs },
      B: {
        sent: total + 1,
        confirmed: confirmed.length + 1,
        handled: b.handled.size,
        duplicates: b.duplicates,
        lost: confirmed.filter((id) => !b.handled.has(id)).length,
        largestGapDuring406Ms: gapWithin(bTimes, faultAt, fixedAt),
      },
    };
    console.log(`[reliability 8] 406 on one handler's channel: ${JSON.stringify(figures)}`);
    expect(failures406).toBeGreaterThanOrEqual(1);
    expect(confirmed).toHaveLength(total);
    expect(figures.B.lost).toBe(0);
    expect(figures.B.largestGapDuring406Ms).toBeLessThan(500);
    // Channel-level only: both connections are the ones from before.
    expect((await connectionsOf(serviceName)).map((c) => c.pid).sort()).toEqual(connectionsBefore);
  }, 45_000);

  describe('9: publish to a missing exchange', () => {
    it('rejects at once with ExchangeNotFoundError naming the exchange; concurrent sends succeed; no retry loop', async () => {
      // The app talks through a proxy that counts the basic.publish frames written to the missing
      // exchange (its name as an AMQP short string), whatever the module logs about them.
      const proxy = await TcpProxy.start();
      proxies.push(proxy);
      // A short publish timeout, so a send that is stuck fails this test in seconds instead of hanging it.
      const { client, serviceName, queueB, b } = await twoHandlerApp('noexch', undefined, { publishTimeoutMs: 5000, uri: proxy.url() });
      const connectionsBefore = (await connectionsOf(serviceName)).map((c) => c.pid).sort();
      const missing = unique('missing-exchange');
      const writes = proxy.countSent(Buffer.concat([Buffer.from([missing.length]), Buffer.from(missing)]));
      const before = Array.from({ length: 50 }, (_, i) => outcome(client.send(queueB, { i }, { messageId: `pre-${i}` })));
      const startedAt = Date.now();
      const bad = outcome(client.publish(missing, 'some.key', { x: 1 }));
      const afterSends = Array.from({ length: 50 }, (_, i) => outcome(client.send(queueB, { i }, { messageId: `post-${i}` })));
      const badResult = await bad;
      const goods = await Promise.all([...before, ...afterSends]);
      const rejectMs = badResult.at - startedAt;
      expect(badResult.ok).toBe(false);
      const error = (badResult as { error: unknown }).error as Error;
      expect(error).toBeInstanceOf(ExchangeNotFoundError);
      expect(error.message).toContain(missing);
      expect(rejectMs).toBeLessThan(1000);
      const failedGoods = goods.filter((g) => !g.ok);
      console.log(
        `[reliability 9] 100 good sends around the 404: ${goods.length - failedGoods.length} confirmed, ${failedGoods.length} failed` +
          (failedGoods.length ? ` (first: ${String((failedGoods[0] as { error: unknown }).error)})` : ''),
      );
      expect(failedGoods.map((g) => String((g as { error: unknown }).error))).toEqual([]);
      const ids = [...Array.from({ length: 50 }, (_, i) => `pre-${i}`), ...Array.from({ length: 50 }, (_, i) => `post-${i}`)];
      await waitFor(() => ids.every((id) => b.handled.has(id)), 'the 100 good sends handled');
      const writesAfterOne = writes.count;
      // A second bad publish is rejected the same way, and nothing keeps retrying in the background:
      // each call wrote its publish once, and no more are written afterwards.
      await expect(client.publish(missing, 'k', {})).rejects.toBeInstanceOf(ExchangeNotFoundError);
      const writesAfterTwo = writes.count;
      await sleep(1000);
      const figures = {
        rejectMs,
        good: { sent: 100, confirmed: goods.length - failedGoods.length, handled: b.handled.size, duplicates: b.duplicates },
        publishesWrittenToMissingExchange: { afterOne: writesAfterOne, afterTwo: writesAfterTwo, oneSecondLater: writes.count },
      };
      console.log(`[reliability 9] publish to a missing exchange: ${JSON.stringify(figures)} error: ${error.message}`);
      expect(figures.publishesWrittenToMissingExchange).toEqual({ afterOne: 1, afterTwo: 2, oneSecondLater: 2 });
      expect((await connectionsOf(serviceName)).map((c) => c.pid).sort()).toEqual(connectionsBefore);
      const last = await client.send(queueB, { last: true });
      await waitFor(() => b.handled.has(last), 'a send after the 404s');
    }, 30_000);

    it("a request() in flight is not failed by another caller's publish to a missing exchange", async () => {
      const serviceName = unique('svc-404rpc');
      const queue = broker.queue(unique('404rpc'));
      @Injectable()
      class Slow {
        @MessageHandler(queue)
        async echo(payload: unknown) {
          await sleep(500);
          return payload;
        }
      }
      const app = await startAppLogged(appModule({ serviceName }, { providers: [Slow] }), new CaptureLogger());
      apps.push(app);
      const client = app.get(RpcClient);
      expect(await client.request(queue, 'warm', { timeoutMs: 5000 })).toBe('warm');
      const requesting = outcome(client.request(queue, { n: 1 }, { timeoutMs: 5000 }));
      await sleep(100); // the request is out and its handler runs
      await expect(client.publish(unique('missing-exchange'), 'k', {})).rejects.toBeInstanceOf(ExchangeNotFoundError);
      const requested = await requesting;
      console.log(
        `[reliability 9] request in flight during another caller's 404: ${requested.ok ? 'resolved' : String((requested as { error: unknown }).error)}`,
      );
      expect(requested.ok ? undefined : (requested as { error: unknown }).error).toBeUndefined();
      expect((requested as { value: unknown }).value).toEqual({ n: 1 });
    }, 20_000);
  });

  describe('10: a queue declared earlier with other arguments', () => {
    async function startAgainst(queue: string, label: string) {
      const serviceName = unique(`svc-${label}`);
      @Injectable()
      class Plain {
        @MessageHandler(queue)
        handle() {
          return undefined;
        }
      }
      const logger = new CaptureLogger();
      const started = Date.now();
      const result = await outcome(startAppLogged(appModule({ serviceName }, { providers: [Plain] }), logger));
      if (result.ok) apps.push((result as { value: INestApplicationContext }).value);
      return { result, serviceName, ms: Date.now() - started, logger };
    }

    it('x-max-length: startup fails with a TopologyError naming the queue and the argument; no connection is left open', async () => {
      const queue = broker.queue(unique('conflict-maxlen'));
      await broker.channel.assertQueue(queue, { durable: true, arguments: { 'x-max-length': 10 } });
      const { result, serviceName, ms } = await startAgainst(queue, 'conflict-maxlen');
      expect(result.ok).toBe(false);
      const error = (result as { error: unknown }).error as Error;
      console.log(`[reliability 10] startup against a conflicting queue failed after ${ms} ms: ${error.message}`);
      expect(error).toBeInstanceOf(TopologyError);
      expect(error).toBeInstanceOf(MessagingError);
      expect(error.message).toContain(queue);
      expect(error.message).toContain('x-max-length');
      await waitFor(async () => (await connectionsOf(serviceName)).length === 0, 'no connection left by the failed startup', 5000);
    }, 20_000);

    it('quorum: startup fails with a TopologyError naming the queue and x-queue-type', async () => {
      const queue = broker.queue(unique('conflict-quorum'));
      await broker.channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
      const { result, serviceName } = await startAgainst(queue, 'conflict-quorum');
      expect(result.ok).toBe(false);
      const error = (result as { error: unknown }).error as Error;
      console.log(`[reliability 10] quorum conflict: ${error.message}`);
      expect(error).toBeInstanceOf(TopologyError);
      expect(error.message).toContain(queue);
      expect(error.message).toContain('x-queue-type');
      await waitFor(async () => (await connectionsOf(serviceName)).length === 0, 'no connection left by the failed startup', 5000);
    }, 20_000);
  });
});
