import { Injectable } from '@nestjs/common';
import { MessageHandler, MessagingError, MessagingHealth, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { AMQP_URL, BROKER_PORT, rabbitmqctl, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import {
  CaptureLogger,
  closeConnections,
  closedPort,
  connectionsOf,
  faultRig,
  produce,
  produceUntil,
  sleep,
  startAppLogged,
  Tally,
} from './helpers';

/**
 * RELIABILITY.md 1 (connection force-closed mid-stream), 11 (several URIs: failover),
 * 17 (close twice, close during a reconnect, no resurrection of cancelled consumers) and part of 28.
 */
describe('reliability: connection loss', () => {
  const rig = faultRig();
  const { apps, proxies } = rig;

  async function proxy(): Promise<TcpProxy> {
    const p = await TcpProxy.start();
    proxies.push(p);
    return p;
  }

  function handlers(queue: string, tally: Tally, handledAt: number[], queueOptions?: { arguments: Record<string, unknown> }) {
    @Injectable()
    class Handlers {
      @MessageHandler({ queue, prefetch: 50, queueOptions })
      handle(_payload: unknown, context: MessageContext) {
        tally.see(context.messageId);
        handledAt.push(Date.now());
      }
    }
    return Handlers;
  }

  /** A handler bound to `exchange` with `order.*`, counting the events it gets. */
  function subscriber(queue: string, exchange: string, tally: Tally) {
    @Injectable()
    class Subscriber {
      @MessageHandler({ queue, exchange, routingKey: 'order.*' })
      handle(_payload: unknown, context: MessageContext) {
        tally.see(context.messageId);
      }
    }
    return Subscriber;
  }

  async function exists(kind: 'queue' | 'exchange', name: string): Promise<boolean> {
    const channel = await rig.broker.connection.createChannel();
    channel.on('error', () => undefined);
    try {
      await (kind === 'queue' ? channel.checkQueue(name) : channel.checkExchange(name));
      return true;
    } catch {
      return false;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  async function bound(exchange: string, queue: string, key: string): Promise<boolean> {
    const lines = (await rabbitmqctl('list_bindings', 'source_name', 'destination_name', 'routing_key')).split('\n');
    return lines.some((line) => line.trim().split('\t').join(' ') === `${exchange} ${queue} ${key}`);
  }

  /** Largest gap between two consecutive handled messages. */
  function largestGap(times: number[]): number {
    let gap = 0;
    for (let i = 1; i < times.length; i++) gap = Math.max(gap, times[i] - times[i - 1]);
    return gap;
  }

  it('1: both connections force-closed mid-stream: no crash, reconnect, topology and consumer back, no confirmed message lost', async () => {
    const serviceName = unique('svc-cut');
    const queue = rig.broker.queue(unique('cut'));
    const exchange = rig.broker.exchange(unique('cut-events'));
    const eventQueue = rig.broker.queue(unique('cut-sub'));
    const tally = new Tally();
    const events = new Tally();
    const handledAt: number[] = [];
    const logger = new CaptureLogger();
    const app = await startAppLogged(
      appModule(
        { serviceName, reconnect: { initialDelayMs: 50, maxDelayMs: 1000 }, publishTimeoutMs: 20_000 },
        { providers: [handlers(queue, tally, handledAt), subscriber(eventQueue, exchange, events)] },
      ),
      logger,
    );
    apps.push(app);
    const client = app.get(RpcClient);
    const health = app.get(MessagingHealth);
    const before = await connectionsOf(serviceName);
    expect(before.map((c) => c.name).sort()).toEqual([`${serviceName}:consumer`, `${serviceName}:publisher`]);
    // Topology an operator removed while the app runs: the exchange (and with it the binding) and
    // a dead-letter queue. Only a re-declaration on reconnect brings them back.
    expect(await bound(exchange, eventQueue, 'order.*')).toBe(true);
    await rig.broker.channel.deleteExchange(exchange);
    await rig.broker.channel.deleteQueue(`${eventQueue}.dlq`);
    expect(await exists('exchange', exchange)).toBe(false);
    expect(await exists('queue', `${eventQueue}.dlq`)).toBe(false);

    // The stream goes on until well after the reconnect, however long the cut takes to inject.
    let streaming = true;
    const producing = produceUntil(
      (i, messageId) => client.send(queue, { i }, { messageId }),
      () => !streaming,
      { concurrency: 10, spacingMs: 15 },
    );

    await waitFor(() => tally.handled.size >= 300, '300 messages handled before the cut');
    const cutAt = Date.now();
    const closed = await closeConnections(serviceName, undefined, 'reliability test: cut mid-stream');
    expect(closed).toBe(2);
    await waitFor(() => logger.firstAt(/consumer connection .* was lost/, cutAt) !== undefined, 'the consumer loss to be logged');
    await waitFor(() => logger.firstAt(/publisher connection .* was lost/, cutAt) !== undefined, 'the publisher loss to be logged');
    await waitFor(() => health.isConnected(), 'the reconnect', 15_000);
    const handledAtReconnect = tally.handled.size;
    await waitFor(() => tally.handled.size >= handledAtReconnect + 300, '300 messages handled after the reconnect', 20_000);
    await waitFor(() => exists('exchange', exchange), `${exchange} declared again after the reconnect`);
    await waitFor(() => bound(exchange, eventQueue, 'order.*'), `the binding of ${eventQueue} declared again`, 20_000);
    await waitFor(() => exists('queue', `${eventQueue}.dlq`), `${eventQueue}.dlq declared again`);
    const event = await client.publish(exchange, 'order.created', { after: 'reconnect' }, { mandatory: true });
    await waitFor(() => events.handled.has(event), 'an event routed through the re-declared binding');

    streaming = false;
    const results = await producing;
    const total = results.length;
    const confirmed = results.filter((r) => r.ok).map((r) => r.id);
    const rejected = results.filter((r) => !r.ok);
    await waitFor(() => confirmed.every((id) => tally.handled.has(id)), 'every confirmed message to be handled', 20_000);
    await sleep(300); // let stray redeliveries (duplicates) show up before counting
    const queued = await rig.broker.depth(queue);
    const deadLettered = await rig.broker.depth(`${queue}.dlq`);
    const lost = confirmed.filter((id) => !tally.handled.has(id)).length;

    const lostAt = Math.min(logger.firstAt(/connection .* was lost/, cutAt)!);
    const consumerBack = logger.firstAt(/Connected \(consumer\)/, lostAt)!;
    const publisherBack = logger.firstAt(/Connected \(publisher\)/, lostAt)!;
    const firstHandledAfter = handledAt.find((t) => t > Math.max(consumerBack, lostAt));
    const figures = {
      sent: total,
      confirmed: confirmed.length,
      rejected: rejected.length,
      handledUnique: tally.handled.size,
      handlerCalls: tally.calls,
      duplicates: tally.duplicates,
      rejectedButHandled: rejected.filter((r) => tally.handled.has(r.id)).length,
      stillQueued: queued,
      deadLettered,
      lost,
      recoveryMs: {
        publisher: publisherBack - lostAt,
        consumer: consumerBack - lostAt,
        firstHandledAfterLoss: firstHandledAfter === undefined ? undefined : firstHandledAfter - lostAt,
        largestHandlingGap: largestGap(handledAt),
      },
    };
    console.log(`[reliability 1] connection force-closed mid-stream: ${JSON.stringify(figures)}`);

    for (const r of rejected) expect((r as { error: unknown }).error).toBeInstanceOf(MessagingError);
    expect(results.filter(Boolean)).toHaveLength(total); // every send settled
    expect(lost).toBe(0);
    expect(confirmed.length + rejected.length).toBe(total);
    expect(tally.handled.size + queued + deadLettered).toBeGreaterThanOrEqual(confirmed.length);
    const after = await connectionsOf(serviceName);
    expect(after).toHaveLength(2);
    expect(after.map((c) => c.pid).some((pid) => before.some((b) => b.pid === pid))).toBe(false);
    expect(logger.matching(/was lost/).length).toBeGreaterThanOrEqual(2);
  }, 90_000);

  it('11 + 28: several URIs: a dead first node is skipped, a node that dies is replaced by the next, no confirmed message lost (quorum queue), no password logged', async () => {
    const serviceName = unique('svc-nodes');
    const queue = rig.broker.queue(unique('nodes'));
    const tally = new Tally();
    const handledAt: number[] = [];
    const logger = new CaptureLogger();
    const dead = `amqp://guest:s3cret@127.0.0.1:${await closedPort()}`;
    const nodeA = await proxy();
    const app = await startAppLogged(
      appModule(
        {
          uri: [dead, nodeA.url(), AMQP_URL],
          serviceName,
          reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
          publishTimeoutMs: 20_000,
        },
        // A quorum queue, as on a real cluster.
        { providers: [handlers(queue, tally, handledAt, { arguments: { 'x-queue-type': 'quorum' } })] },
      ),
      logger,
    );
    apps.push(app);
    const client = app.get(RpcClient);
    // Startup skipped the dead node and connected through node A.
    expect(nodeA.open).toBe(2);
    expect(logger.matching(/Cannot connect \(publisher\) to amqp:\/\/guest:\*\*\*@127\.0\.0\.1/).length).toBeGreaterThan(0);

    const total = 1500;
    const producing = produce((i, messageId) => client.send(queue, { i }, { messageId }), total, { concurrency: 10, spacingMs: 10 });
    await waitFor(() => tally.handled.size >= 200, '200 messages handled through node A');
    const diedAt = Date.now();
    nodeA.cut(); // node A dies and stays dead
    await waitFor(
      () =>
        logger.firstAt(new RegExp(`Connected \\(consumer\\) to amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${BROKER_PORT}`), diedAt) !==
        undefined,
      'the consumer to move to the next node',
    );
    await waitFor(
      () =>
        logger.firstAt(new RegExp(`Connected \\(publisher\\) to amqp://guest:\\*\\*\\*@127\\.0\\.0\\.1:${BROKER_PORT}`), diedAt) !==
        undefined,
      'the publisher to move to the next node',
    );
    const movedAt = Math.max(logger.firstAt(/Connected \(consumer\)/, diedAt)!, logger.firstAt(/Connected \(publisher\)/, diedAt)!);
    const results = await producing;
    const confirmed = results.filter((r) => r.ok).map((r) => r.id);
    const rejected = results.filter((r) => !r.ok);
    await waitFor(() => confirmed.every((id) => tally.handled.has(id)), 'every confirmed message handled', 20_000);
    const lost = confirmed.filter((id) => !tally.handled.has(id)).length;
    const figures = {
      sent: total,
      confirmed: confirmed.length,
      rejected: rejected.length,
      handledUnique: tally.handled.size,
      duplicates: tally.duplicates,
      stillQueued: await rig.broker.depth(queue),
      deadLettered: await rig.broker.depth(`${queue}.dlq`),
      lost,
      failoverMs: movedAt - diedAt,
      refusedByDeadNode: nodeA.refused,
    };
    console.log(`[reliability 11] failover to the next URI: ${JSON.stringify(figures)}`);
    expect(lost).toBe(0);
    for (const r of rejected) expect((r as { error: unknown }).error).toBeInstanceOf(MessagingError);
    expect(nodeA.open).toBe(0);
    expect((await connectionsOf(serviceName)).map((c) => c.name).sort()).toEqual([`${serviceName}:consumer`, `${serviceName}:publisher`]);
    // After failover it still works end to end.
    const id = await client.send(queue, { after: true });
    await waitFor(() => tally.handled.has(id), 'a message after the failover');
    // 28: the password of the dead node's URL is in no log line.
    expect(logger.text).not.toContain('s3cret');
  }, 60_000);

  it('11: a forced close with several URIs (dead first) reconnects to the live one', async () => {
    const serviceName = unique('svc-uris');
    const queue = rig.broker.queue(unique('uris'));
    const tally = new Tally();
    const logger = new CaptureLogger();
    const dead = `amqp://guest:s3cret@127.0.0.1:${await closedPort()}`;
    const app = await startAppLogged(
      appModule(
        { uri: [dead, AMQP_URL], serviceName, reconnect: { initialDelayMs: 50, maxDelayMs: 500 } },
        { providers: [handlers(queue, tally, [])] },
      ),
      logger,
    );
    apps.push(app);
    const client = app.get(RpcClient);
    const first = await client.send(queue, { n: 1 });
    await waitFor(() => tally.handled.has(first), 'the first message');
    const cutAt = Date.now();
    expect(await closeConnections(serviceName)).toBe(2);
    await waitFor(() => logger.firstAt(/Connected \(consumer\)/, cutAt) !== undefined, 'the consumer reconnect', 15_000);
    await waitFor(() => app.get(MessagingHealth).isConnected(), 'both connections', 15_000);
    const second = await client.send(queue, { n: 2 });
    await waitFor(() => tally.handled.has(second), 'a message after the reconnect');
    expect(tally.duplicates).toBe(0);
    expect(logger.text).not.toContain('s3cret');
  }, 30_000);

  describe('17: shutdown is idempotent and does not hang', () => {
    it('close() called twice at once, then once more, resolves quickly', async () => {
      const serviceName = unique('svc-close2');
      const queue = rig.broker.queue(unique('close2'));
      const app = await startAppLogged(appModule({ serviceName }, { providers: [handlers(queue, new Tally(), [])] }), new CaptureLogger());
      const started = Date.now();
      await Promise.all([app.close(), app.close()]);
      await app.close();
      expect(Date.now() - started).toBeLessThan(5000);
      await waitFor(async () => (await connectionsOf(serviceName)).length === 0, 'no connection left', 5000);
    }, 20_000);

    it('close() during a reconnect (broker unreachable) resolves and nothing reconnects afterwards', async () => {
      const serviceName = unique('svc-closerc');
      const queue = rig.broker.queue(unique('closerc'));
      const node = await proxy();
      const logger = new CaptureLogger();
      const app = await startAppLogged(
        appModule(
          { uri: node.url(), serviceName, reconnect: { initialDelayMs: 100, maxDelayMs: 400 }, shutdownTimeoutMs: 2000 },
          { providers: [handlers(queue, new Tally(), [])] },
        ),
        logger,
      );
      expect(node.open).toBe(2);
      const cutAt = Date.now();
      node.cut();
      await waitFor(() => logger.firstAt(/Cannot connect/, cutAt) !== undefined, 'a failed reconnect attempt');
      const closing = Date.now();
      await app.close();
      const closeMs = Date.now() - closing;
      const acceptedAtClose = node.accepted;
      node.resume();
      await sleep(1500); // several backoff periods: a leftover reconnect loop would connect now
      console.log(
        `[reliability 17] close() during reconnect took ${closeMs} ms; connection attempts after close: ${node.accepted - acceptedAtClose}`,
      );
      expect(closeMs).toBeLessThan(3000);
      expect(node.accepted).toBe(acceptedAtClose);
      expect(node.open).toBe(0);
      expect(await connectionsOf(serviceName)).toHaveLength(0);
    }, 30_000);

    it('a consumer cancelled by shutdown is not resurrected when its connection comes back during the drain', async () => {
      const serviceName = unique('svc-noresurrect');
      const queue = rig.broker.queue(unique('noresurrect'));
      const calls: string[] = [];
      let release!: () => void;
      const gate = new Promise<void>((resolve) => (release = resolve));
      @Injectable()
      class Slow {
        @MessageHandler({ queue, prefetch: 1 })
        async handle(_payload: unknown, context: MessageContext) {
          calls.push(context.messageId ?? '-');
          await gate;
        }
      }
      const logger = new CaptureLogger();
      const app = await startAppLogged(
        appModule({ serviceName, shutdownTimeoutMs: 15_000, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, { providers: [Slow] }),
        logger,
      );
      const client = app.get(RpcClient);
      const health = app.get(MessagingHealth);
      await client.send(queue, { n: 1 }, { messageId: 'in-flight' });
      await waitFor(() => calls.length === 1, 'the handler to start');
      const closing = app.close();
      await waitFor(() => !health.isReady(), 'shutdown to start');
      await sleep(200); // the basic.cancel goes out
      const cutAt = Date.now();
      expect(await closeConnections(serviceName, 'consumer', 'reliability test: drop during drain')).toBe(1);
      await waitFor(() => logger.firstAt(/Connected \(consumer\)/, cutAt) !== undefined, 'the consumer connection to come back', 10_000);
      // A message arriving now must stay in the queue: the handler was cancelled by shutdown.
      rig.broker.publishRaw(queue, JSON.stringify({ n: 2 }), {
        contentType: 'application/json',
        messageId: 'after-cancel',
        persistent: true,
      });
      await sleep(1000);
      const callsBeforeRelease = [...calls];
      release();
      await closing;
      const depth = await rig.broker.depth(queue);
      console.log(
        `[reliability 17] after a reconnect during the drain: handler calls ${JSON.stringify(callsBeforeRelease)}, left in queue ${depth}`,
      );
      expect(callsBeforeRelease).toEqual(['in-flight']);
      // The in-flight message lost its channel with the connection, so it is back in the queue with the new one.
      expect(depth).toBe(2);
    }, 45_000);
  });
});
