import { Injectable } from '@nestjs/common';
import {
  DeadLetters,
  ExchangeNotFoundError,
  InvalidArgumentError,
  MessageHandler,
  MessagingConfigError,
  QueueNotFoundError,
  RpcClient,
  UnrecoverableError,
  UnroutableError,
  type MessageContext,
} from '../../lib';
import { appModule } from '../support/app';
import { deferred, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, connectionsOf, faultRig, outcome, startAppLogged, within } from './helpers';

/**
 * RELIABILITY.md round 2: 35 (escaped prototype keys, text/plain bodies), 36 (DeadLetters.replay
 * without a DLQ, with letters whose queue is gone, with handlers that keep failing), 37 (close()
 * during a handshake), 41 (per-call timeouts and gather's exchange check), 42 (connection half:
 * close() on a stalled socket is bounded).
 */
describe('reliability: codec, replay, close and per-call options', () => {
  const rig = faultRig();
  const { apps, proxies } = rig;

  async function start(options: Parameters<typeof appModule>[0], providers: unknown[] = [], logger = new CaptureLogger()) {
    const app = await startAppLogged(appModule(options, { providers: providers as never[] }), logger);
    apps.push(app);
    return app;
  }

  it('35: escaped "__proto__"/"constructor" keys are removed from bodies like literal ones; text/plain bodies arrive as strings', async () => {
    const queue = rig.broker.queue(unique('r2-bodies'));
    const payloads = new Map<string, unknown>();
    @Injectable()
    class Bodies {
      @MessageHandler(queue)
      take(payload: unknown, context: MessageContext) {
        payloads.set(context.messageId!, payload);
      }
    }
    await start({ serviceName: unique('svc-r2-bodies') }, [Bodies]);
    const json = { contentType: 'application/json' };
    rig.broker.publishRaw(queue, String.raw`{"\u005f_proto__":{"polluted":"yes"},"a":1}`, { ...json, messageId: 'proto' });
    rig.broker.publishRaw(queue, String.raw`{"\u0063onstructor":{"prototype":{"polluted":"yes"}},"b":2}`, { ...json, messageId: 'ctor' });
    rig.broker.publishRaw(queue, 'plain words, not JSON', { contentType: 'text/plain; charset=utf-8', messageId: 'text' });
    await waitFor(() => payloads.size === 3, 'the three bodies handled');
    const proto = payloads.get('proto') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(proto, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(proto).toEqual({ a: 1 });
    const ctor = payloads.get('ctor') as Record<string, unknown>;
    expect(Object.prototype.hasOwnProperty.call(ctor, 'constructor')).toBe(false);
    expect(ctor).toEqual({ b: 2 });
    expect(payloads.get('text')).toBe('plain words, not JSON');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('36: replay of a queue without a dead-letter queue rejects with QueueNotFoundError; a request in flight and a send meanwhile succeed on the same connection', async () => {
    const serviceName = unique('svc-r2-nodlq');
    const slow = rig.broker.queue(unique('r2-slow'));
    const other = rig.broker.queue(unique('r2-other'));
    const missing = unique('r2-never-declared');
    const gate = deferred();
    const started = deferred();
    const sent: string[] = [];
    @Injectable()
    class Handlers {
      @MessageHandler(slow)
      async slow(n: number) {
        started.resolve();
        await gate.promise;
        return n * 2;
      }
      @MessageHandler(other)
      other(_payload: unknown, context: MessageContext) {
        sent.push(context.messageId!);
      }
    }
    const logger = new CaptureLogger();
    const app = await start({ serviceName }, [Handlers], logger);
    const [before] = await connectionsOf(serviceName, 'publisher');
    const client = app.get(RpcClient);
    const request = outcome(client.request(slow, 21, { timeoutMs: 10_000 }));
    await started.promise;

    const [replayed, send] = await Promise.all([
      outcome(app.get(DeadLetters).replay(missing)),
      outcome(client.send(other, { during: 'replay' }, { messageId: 'during-replay' })),
    ]);
    expect(replayed.ok).toBe(false);
    const error = (replayed as { error: Error }).error;
    expect(error).toBeInstanceOf(QueueNotFoundError);
    expect((error as QueueNotFoundError).queue).toBe(`${missing}.dlq`);
    expect(error.message).toContain(missing);
    expect(send.ok).toBe(true);

    gate.resolve();
    const answered = await request;
    expect(answered).toMatchObject({ ok: true, value: 42 });
    await waitFor(() => sent.includes('during-replay'), 'the send made during the replay handled');
    expect(await client.request(slow, 1, { timeoutMs: 5000 })).toBe(2);
    const [after] = await connectionsOf(serviceName, 'publisher');
    expect(after.pid).toBe(before.pid);
    expect(logger.matching(/was lost/)).toEqual([]);
  }, 30_000);

  it("36, 57: replay skips dead letters whose queue does not exist (a broadcast handler's) and leaves them in place, also one whose header names a queue that exists", async () => {
    const serviceName = unique('svc-r2-bcast');
    const exchange = rig.broker.exchange(unique('r2-bcast'));
    const base = rig.broker.queue(`${exchange}.${serviceName}`, []);
    const target = rig.broker.queue(unique('r2-target'));
    const handled: string[] = [];
    @Injectable()
    class Handlers {
      @MessageHandler({ exchange, broadcast: true, retry: false })
      fails() {
        throw new UnrecoverableError('always');
      }
      @MessageHandler(target)
      take(_payload: unknown, context: MessageContext) {
        handled.push(context.messageId!);
      }
    }
    const logger = new CaptureLogger();
    const app = await start({ serviceName }, [Handlers], logger);
    await app.get(RpcClient).publish(exchange, 'any', { n: 1 }, { messageId: 'broadcast-letter' });
    await waitFor(async () => (await rig.broker.depth(`${base}.dlq`)) === 1, 'the broadcast dead letter');
    // Behind it, a letter whose header names a queue that exists: a replay goes only to the
    // queue of the dead-letter queue (57), so it stays too.
    rig.broker.publishRaw(`${base}.dlq`, '{"n":2}', {
      contentType: 'application/json',
      messageId: 'forged',
      headers: { 'x-original-queue': target },
    });
    await waitFor(async () => (await rig.broker.depth(`${base}.dlq`)) === 2, 'two dead letters');

    expect(await within(app.get(DeadLetters).replay(base), 10_000, 'stuck')).toBe(0);
    expect(await within(app.get(DeadLetters).replay(base), 10_000, 'stuck')).toBe(0);
    const left = await rig.broker.drainQueue(`${base}.dlq`);
    expect(left.map((m) => m.properties.messageId)).toEqual(['broadcast-letter', 'forged']);
    expect(handled).toEqual([]);
    expect(logger.matching(/2 messages left .*does not exist/).length).toBeGreaterThan(0);
  }, 30_000);

  it('36: replay with no limit of messages that fail again takes only what was in the dead-letter queue when it started', async () => {
    const queue = rig.broker.queue(unique('r2-refail'), []);
    let calls = 0;
    @Injectable()
    class Handlers {
      @MessageHandler({ queue, retry: false })
      fails() {
        calls++;
        throw new Error('still broken');
      }
    }
    const app = await start({ serviceName: unique('svc-r2-refail') }, [Handlers]);
    const client = app.get(RpcClient);
    for (let i = 0; i < 3; i++) await client.send(queue, { i });
    await waitFor(async () => (await rig.broker.depth(`${queue}.dlq`)) === 3, 'three dead letters');
    calls = 0;
    const moved = await within(app.get(DeadLetters).replay(queue, { limit: Infinity }), 10_000, 'looping');
    expect(moved).toBe(3);
    await waitFor(
      async () => calls === 3 && (await rig.broker.depth(`${queue}.dlq`)) === 3,
      'the three failing again, back in the dead-letter queue',
    );
  }, 30_000);

  it('37: close() while a reconnection handshake is in flight closes the connection it opens; nothing is left on the broker', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const serviceName = unique('svc-r2-handshake');
    const logger = new CaptureLogger();
    const app = await startAppLogged(
      appModule({ uri: proxy.url(), serviceName, registerHandlers: false, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } }),
      logger,
    );
    expect(await connectionsOf(serviceName)).toHaveLength(1);
    const cutAt = Date.now();
    proxy.cut();
    await waitFor(() => logger.firstAt(/was lost/, cutAt) !== undefined && proxy.refused > 0, 'the loss and a refused reconnect');
    // The next attempt gets through to the broker, but its handshake is held.
    proxy.resume();
    proxy.stall();
    await waitFor(() => proxy.open === 1, 'a reconnect attempt held mid-handshake');

    const closeStarted = Date.now();
    const closing = app.close();
    proxy.resume();
    expect(
      await within(
        closing.then(() => 'closed'),
        10_000,
        'close() hangs',
      ),
    ).toBe('closed');
    console.log(`[reliability 37] close() during a held handshake took ${Date.now() - closeStarted} ms`);
    await waitFor(async () => proxy.open === 0 && (await connectionsOf(serviceName)).length === 0, 'no connection left', 5000);
  }, 30_000);

  it('42: close() is bounded while the socket is stalled (no heartbeat to notice it)', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const serviceName = unique('svc-r2-stallclose');
    const queue = rig.broker.queue(unique('r2-stallclose'), []);
    await rig.broker.channel.assertQueue(queue, { durable: true });
    const app = await startAppLogged(
      appModule({ uri: proxy.url(), serviceName, registerHandlers: false, heartbeatSeconds: 0 }),
      new CaptureLogger(),
    );
    await app.get(RpcClient).send(queue, { warm: 'up' });
    proxy.stall();
    const started = Date.now();
    const closed = await within(
      app.close().then(() => 'closed'),
      15_000,
      'hangs',
    );
    const tookMs = Date.now() - started;
    console.log(`[reliability 42] close() on a stalled socket: ${closed} after ${tookMs} ms`);
    expect(closed).toBe('closed');
    expect(tookMs).toBeLessThan(8000);
    // The socket was let go (destroyed, the broker never answered): the proxy sees it end.
    await waitFor(() => proxy.open === 0, 'the stalled socket released', 1000);
  }, 30_000);

  it('API.md: publish resolves when nothing is bound (events may have no subscriber); with mandatory: true it rejects with UnroutableError', async () => {
    const exchange = rig.broker.exchange(unique('r2-unbound'));
    await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
    const app = await start({ serviceName: unique('svc-r2-unbound'), registerHandlers: false });
    const client = app.get(RpcClient);
    await expect(client.publish(exchange, 'nobody.listens', { n: 1 })).resolves.toEqual(expect.any(String));
    await expect(client.publish(exchange, 'nobody.listens', { n: 2 }, { mandatory: true })).rejects.toBeInstanceOf(UnroutableError);
    await expect(client.send(unique('r2-no-queue'), { n: 3 })).rejects.toBeInstanceOf(UnroutableError);
  });

  describe('41: per-call options', () => {
    it('timeoutMs and expirationMs that are not positive integers are refused before anything is written; a pending request is untouched', async () => {
      const slow = rig.broker.queue(unique('r2-opts-slow'));
      const target = rig.broker.queue(unique('r2-opts-target'));
      const gate = deferred();
      const started = deferred();
      let targetCalls = 0;
      @Injectable()
      class Handlers {
        @MessageHandler(slow)
        async slow(n: number) {
          started.resolve();
          await gate.promise;
          return n + 1;
        }
        @MessageHandler(target)
        take() {
          targetCalls++;
          return 'ok';
        }
      }
      const app = await start({ serviceName: unique('svc-r2-opts') }, [Handlers]);
      const client = app.get(RpcClient);
      const pending = outcome(client.request(slow, 1, { timeoutMs: 10_000 }));
      await started.promise;

      const bad = [NaN, Infinity, -Infinity, 1.5, -1, 0, 2 ** 31, '100' as unknown as number];
      const calls = bad.flatMap((value) => [
        outcome(client.request(target, {}, { timeoutMs: value })),
        outcome(client.gather(target, 'k', {}, { timeoutMs: value })),
        outcome(client.send(target, {}, { timeoutMs: value })),
        outcome(client.send(target, {}, { expirationMs: value })),
        outcome(client.publish('amq.topic', 'k', {}, { expirationMs: value })),
      ]);
      // gather's `expect` counts replies: 0 means none wanted; anything but a whole number is refused.
      for (const value of [NaN, Infinity, 1.5, -1, '2' as unknown as number])
        calls.push(outcome(client.gather(target, 'k', {}, { expect: value })));
      const results = await Promise.all(calls);
      for (const result of results) {
        expect(result.ok).toBe(false);
        const error = (result as { error: Error }).error;
        expect(error).toBeInstanceOf(InvalidArgumentError);
        expect(error).toBeInstanceOf(MessagingConfigError);
        expect(error.message).toMatch(/timeoutMs|expirationMs|expect/);
      }
      // A valid call still works, and nothing of the refused ones reached the queue.
      expect(await client.request(target, {}, { timeoutMs: 5000 })).toBe('ok');
      expect(targetCalls).toBe(1);
      gate.resolve();
      expect(await pending).toMatchObject({ ok: true, value: 2 });
    });

    it("gather's exchange check is bounded by its timeout (stalled connection)", async () => {
      const proxy = await TcpProxy.start();
      proxies.push(proxy);
      const exchange = rig.broker.exchange(unique('r2-gather-stall'));
      await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
      const app = await startAppLogged(
        appModule({ uri: proxy.url(), serviceName: unique('svc-r2-gstall'), registerHandlers: false, heartbeatSeconds: 0 }),
        new CaptureLogger(),
      );
      const client = app.get(RpcClient);
      proxy.stall();
      const startedAt = Date.now();
      const result = await within(client.gather(exchange, 'k', {}, { timeoutMs: 500 }), 5000, 'unbounded');
      const tookMs = Date.now() - startedAt;
      expect(result).toEqual([]);
      expect(tookMs).toBeLessThan(1500);
      proxy.resume();
    });

    it('an exchange deleted after a gather is noticed by the next gather; pending requests are untouched', async () => {
      const exchange = rig.broker.exchange(unique('r2-gather-del'));
      const slow = rig.broker.queue(unique('r2-gather-slow'));
      const responder = rig.broker.queue(unique('r2-gather-resp'));
      const gate = deferred();
      const started = deferred();
      @Injectable()
      class Handlers {
        @MessageHandler({ queue: responder, exchange, routingKey: 'k' })
        answer() {
          return 'here';
        }
        @MessageHandler(slow)
        async slow() {
          started.resolve();
          await gate.promise;
          return 'slow done';
        }
      }
      const app = await start({ serviceName: unique('svc-r2-gdel') }, [Handlers]);
      const client = app.get(RpcClient);
      expect(await client.gather(exchange, 'k', {}, { expect: 1, timeoutMs: 5000 })).toEqual(['here']);
      const pending = outcome(client.request(slow, {}, { timeoutMs: 10_000 }));
      await started.promise;
      await rig.broker.channel.deleteExchange(exchange);

      const again = await outcome(client.gather(exchange, 'k', {}, { expect: 1, timeoutMs: 2000 }));
      expect(again.ok).toBe(false);
      expect((again as { error: unknown }).error).toBeInstanceOf(ExchangeNotFoundError);
      gate.resolve();
      expect(await pending).toMatchObject({ ok: true, value: 'slow done' });
    });
  });
});
