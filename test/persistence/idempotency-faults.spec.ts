import { setImmediate as tick } from 'node:timers/promises';
import type { INestApplicationContext } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import { Redis } from 'ioredis';
import {
  MemoryIdempotencyStore,
  MessageHandler,
  PostgresIdempotencyStore,
  RedisIdempotencyStore,
  RpcClient,
  type Codec,
  type IdempotencyClaim,
  type IdempotencyStore,
  type MessageContext,
  type MessagingOptions,
} from '../../lib';
import { appModule } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
import { TcpProxy } from '../support/tcp-proxy';
import { startAppLogged } from '../reliability/helpers';
import { deleteKeys, pgPool, redisClient, uniqueTable } from './databases';
import { WatchedStore } from './watched-store';

/**
 * Idempotent handlers when their store fails or is slow (cases 58, 61, 66), and handlers whose
 * decode resolves after shutdown gave up on their message (61). The stores reach Redis and
 * PostgreSQL through a TcpProxy, so a test can cut or stall them without touching the services.
 */

/** One handler run: the message id, its try and when it started and ended. */
interface Run {
  id?: string;
  attempt: number;
  redeliveries: unknown;
  start: number;
  end?: number;
}

function handlerOf(queue: string, runs: Run[], workMs = 0) {
  @Injectable()
  class IdempotentHandler {
    @MessageHandler({ queue, idempotent: true, prefetch: 5, retry: { attempts: 2, delaysMs: [0] } })
    async handle(_: unknown, context: MessageContext): Promise<void> {
      const run: Run = {
        id: context.messageId,
        attempt: context.attempt,
        redeliveries: context.headers['x-redeliveries'],
        start: Date.now(),
      };
      runs.push(run);
      if (workMs > 0) await new Promise((resolve) => setTimeout(resolve, workMs));
      run.end = Date.now();
    }
  }
  return IdempotentHandler;
}

/** A Redis or PostgreSQL store reached through a proxy of its own; `remove()` drops its keys and closes. */
interface ProxiedStore {
  proxy: TcpProxy;
  store: IdempotencyStore;
  remove(): Promise<void>;
}

const PROXIED: Record<string, () => Promise<ProxiedStore>> = {
  redis: async () => {
    const proxy = await TcpProxy.start(6379);
    // Fails a command soon while the proxy refuses connections, instead of queueing it.
    const client = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: 1, lazyConnect: false });
    client.on('error', () => undefined);
    const keyPrefix = `${unique('idem-faults')}:`;
    return {
      proxy,
      store: new RedisIdempotencyStore(client, { keyPrefix }),
      remove: async () => {
        client.disconnect();
        await proxy.close();
        const direct = redisClient();
        await deleteKeys(direct, keyPrefix);
        direct.disconnect();
      },
    };
  },
  postgres: async () => {
    const proxy = await TcpProxy.start(5432);
    const pool = pgPool({ connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test`, connectionTimeoutMillis: 1_000 });
    const table = uniqueTable('idem_faults');
    return {
      proxy,
      store: new PostgresIdempotencyStore(pool, { table }),
      remove: async () => {
        await proxy.close();
        await pool.end().catch(() => undefined);
        const direct = pgPool();
        await direct.query(`DROP TABLE IF EXISTS ${table}`);
        await direct.end();
      },
    };
  },
};

/**
 * A broker connection and the apps of one test, opened before and closed after each test of the
 * describe block that calls it: apps first (an app still consuming would declare the queues
 * again), then the queues. `around` runs before the apps close (e.g. a stalled proxy resumes, so
 * they close at once) and after the cleanup.
 */
function testRig(around: { setup?: () => Promise<void>; beforeClose?: () => void; teardown?: () => Promise<void> } = {}) {
  const apps: INestApplicationContext[] = [];
  let broker: Broker | undefined;
  beforeEach(async () => {
    broker = await Broker.open();
    await around.setup?.();
  });
  afterEach(async () => {
    around.beforeClose?.();
    for (const app of apps.splice(0)) await app.close();
    await broker?.cleanup();
    await around.teardown?.();
  });
  return {
    get broker(): Broker {
      if (!broker) throw new Error('testRig: the broker connection opens in beforeEach');
      return broker;
    },
    async start(options: Partial<MessagingOptions>, providers: unknown[], logger = new CaptureLogger()): Promise<INestApplicationContext> {
      const app = await startAppLogged(appModule(options, { providers: providers as never }), logger);
      apps.push(app);
      return app;
    },
    async close(app: INestApplicationContext): Promise<void> {
      apps.splice(apps.indexOf(app), 1);
      await app.close();
    },
  };
}

/** Back-off of requeues (and of reconnects) short enough for a test. */
const QUICK = { reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, maxRedeliveries: 1 };

describe.each(Object.keys(PROXIED))('idempotency store faults with the %s store', (kind) => {
  let proxied: ProxiedStore;
  const apps = testRig({
    setup: async () => void (proxied = await PROXIED[kind]()),
    beforeClose: () => proxied.proxy.resume(), // so the apps close at once
    teardown: () => proxied.remove(),
  });

  it('an unreachable store sends the message back with back-off: no try and no redelivery is counted, nothing is dead-lettered', async () => {
    const queue = apps.broker.queue(unique('idem-store-down'), [0]);
    const runs: Run[] = [];
    const store = new WatchedStore(proxied.store);
    const app = await apps.start({ ...QUICK, idempotency: { store, storeTimeoutMs: 500 } }, [handlerOf(queue, runs)]);
    proxied.proxy.cut();
    await app.get(RpcClient).send(queue, { n: 1 }, { messageId: 'a' });
    // More failed claims than the retry policy (2 tries) and maxRedeliveries (1) together allow.
    await waitFor(
      async () => store.failures >= 5 || (await apps.broker.depth(`${queue}.dlq`)) > 0,
      'five failed claims (or a dead letter)',
      20_000,
    );
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
    expect(runs).toEqual([]);
    proxied.proxy.resume();
    await waitFor(() => runs.length === 1, 'the message to be handled once the store is back', 20_000);
    // Sent back as a copy with its counters as they were: none.
    expect(runs[0]).toMatchObject({ id: 'a', attempt: 1, redeliveries: 0 });
    await waitFor(async () => (await apps.broker.depth(queue)) === 0, 'the queue to be empty');
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
    expect(runs).toHaveLength(1);
  });

  it('with two instances, a message bounced between them while the store is down is not counted either (soak: idem-pg dead-lettered by DeliveryLimitError)', async () => {
    const queue = apps.broker.queue(unique('idem-store-down-2'), [0]);
    const runs: Run[] = [];
    const first = new WatchedStore(proxied.store);
    const second = new WatchedStore(proxied.store);
    const app = await apps.start({ ...QUICK, idempotency: { store: first, storeTimeoutMs: 500 } }, [handlerOf(queue, runs)]);
    await apps.start({ ...QUICK, idempotency: { store: second, storeTimeoutMs: 500 } }, [handlerOf(queue, runs)]);
    proxied.proxy.cut();
    await app.get(RpcClient).send(queue, { n: 1 }, { messageId: 'a' });
    // Each instance excuses only what it returned itself: a message the other one returned would
    // count against maxRedeliveries (1) unless it comes back unmarked.
    await waitFor(
      async () => (first.failures >= 3 && second.failures >= 3) || (await apps.broker.depth(`${queue}.dlq`)) > 0,
      'three failed claims on each instance (or a dead letter)',
      20_000,
    );
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
    proxied.proxy.resume();
    await waitFor(() => runs.length === 1, 'the message to be handled once the store is back', 20_000);
    expect(runs[0]).toMatchObject({ id: 'a', attempt: 1, redeliveries: 0 });
    await waitFor(async () => (await apps.broker.depth(queue)) === 0, 'the queue to be empty');
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
    expect(runs).toHaveLength(1);
  });

  it('a stalled store does not hold a delivery forever: the claim has a deadline, late claims are released', async () => {
    const queue = apps.broker.queue(unique('idem-store-stall'), [0]);
    const runs: Run[] = [];
    const store = new WatchedStore(proxied.store);
    // A long lease: if a claim answered late kept its key, the message would wait it out.
    const app = await apps.start({ ...QUICK, idempotency: { store, storeTimeoutMs: 300, leaseMs: 60_000 } }, [handlerOf(queue, runs)]);
    await store.claim('warm-up', 'w', 1_000); // the connection (and PostgreSQL's table) exist before the stall
    await store.release('warm-up', 'w');
    proxied.proxy.stall();
    await app.get(RpcClient).send(queue, {}, { messageId: 'a' });
    await waitFor(() => store.claims >= 4, 'the claim to be tried again after its deadline', 10_000);
    expect(runs).toEqual([]);
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
    proxied.proxy.resume();
    await waitFor(() => runs.length === 1, 'the message to be handled once the store answers again', 15_000);
    await waitFor(async () => (await apps.broker.depth(queue)) === 0, 'the queue to be empty');
    expect(runs[0]).toMatchObject({ id: 'a', attempt: 1 });
    expect(await apps.broker.depth(`${queue}.dlq`)).toBe(0);
  });

  it('a handler that outlives leaseMs keeps its claim (renewed): a copy arriving meanwhile waits, then is dropped', async () => {
    const queue = apps.broker.queue(unique('idem-lease'), [0]);
    const runs: Run[] = [];
    const store = new WatchedStore(proxied.store);
    // Two instances with their own store objects, as two processes would have.
    const other = new WatchedStore(proxied.store);
    const leaseMs = 300;
    const first = await apps.start({ idempotency: { store, leaseMs } }, [handlerOf(queue, runs, 4 * leaseMs)]);
    await apps.start({ idempotency: { store: other, leaseMs } }, [handlerOf(queue, runs, 4 * leaseMs)]);
    const rpc = first.get(RpcClient);
    await rpc.send(queue, {}, { messageId: 'a' });
    await waitFor(() => runs.length === 1, 'the first copy to start');
    await rpc.send(queue, {}, { messageId: 'a' });
    // The second copy reaches a claim that is held, and keeps finding it held past the lease.
    await waitFor(() => store.busy + other.busy >= 1, 'the second copy to find the claim held');
    await waitFor(() => store.done + other.done >= 1 || runs.length >= 2, 'the second copy to be settled (or to run)', 10_000);
    expect(runs).toHaveLength(1);
    expect(runs[0].end! - runs[0].start).toBeGreaterThanOrEqual(4 * leaseMs - 5);
    expect(store.renewals + other.renewals).toBeGreaterThanOrEqual(2);
    await waitFor(async () => (await apps.broker.depth(queue)) === 0, 'the queue to be empty');
  });
});

describe('a store that cannot renew claims', () => {
  const apps = testRig();

  it('a handler that outlives leaseMs is warned about, once, naming the option', async () => {
    const queue = apps.broker.queue(unique('idem-no-renew'), [0]);
    const runs: Run[] = [];
    const memory = new MemoryIdempotencyStore();
    // A store of another database, written before renew existed: the three required operations only.
    const store: IdempotencyStore = {
      claim: (...a) => memory.claim(...a),
      complete: (...a) => memory.complete(...a),
      release: (...a) => memory.release(...a),
    };
    const logger = new CaptureLogger();
    const leaseMs = 200;
    const app = await apps.start({ idempotency: { store, leaseMs } }, [handlerOf(queue, runs, 3 * leaseMs)], logger);
    await app.get(RpcClient).send(queue, {}, { messageId: 'a' });
    await waitFor(() => runs[0]?.end !== undefined, 'the handler to end');
    const warnings = logger.find('still runs after its lease', 'warn');
    expect(warnings).toHaveLength(1);
    expect(warnings[0].message).toContain(
      'message a still runs after its lease (idempotency.leaseMs 200 ms), and its store cannot renew claims',
    );
  });
});

describe('no handler starts after shutdown gave up on its message', () => {
  const apps = testRig();

  it('a claim that answers after shutdown gave up: the handler never runs, the message stays on its queue, the claim is released', async () => {
    const queue = apps.broker.queue(unique('idem-slow-claim'), [0]);
    const runs: Run[] = [];
    const claimed = deferred();
    const answer = deferred<IdempotencyClaim>();
    const released = deferred();
    const slow: IdempotencyStore = {
      claim: () => (claimed.resolve(), answer.promise),
      complete: async () => undefined,
      release: async () => released.resolve(),
    };
    const app = await apps.start({ shutdownTimeoutMs: 100, idempotency: { store: slow } }, [handlerOf(queue, runs)]);
    await app.get(RpcClient).send(queue, {}, { messageId: 'a' });
    await claimed.promise;
    await apps.close(app);
    answer.resolve({ state: 'claimed' });
    // After the fix the late claim is released; before it, the handler runs (then its record is made).
    await Promise.race([released.promise, waitFor(() => runs.length > 0, 'a run', 5_000)]);
    expect(runs).toEqual([]);
    expect(await apps.broker.depth(queue)).toBe(1);
  });

  it('a decode that resolves after shutdown gave up (off the event loop): the handler never runs, the message stays on its queue', async () => {
    const queue = apps.broker.queue(unique('slow-decode'), [0]);
    const runs: Run[] = [];
    const decoding = deferred();
    const gate = deferred();
    // Resolves later, as CodecRegistry.decode's promise for a compressed body does.
    const slowCodec: Codec = {
      contentType: 'application/x-slow',
      encode: (value) => Buffer.from(JSON.stringify(value)),
      decode: (body) => (decoding.resolve(), gate.promise.then(() => JSON.parse(body.toString()))),
    };
    @Injectable()
    class Handler {
      @MessageHandler({ queue, retry: false })
      handle(_: unknown, context: MessageContext): void {
        runs.push({ id: context.messageId, attempt: context.attempt, redeliveries: undefined, start: Date.now() });
      }
    }
    const app = await apps.start({ shutdownTimeoutMs: 100, codecs: [slowCodec] }, [Handler]);
    await app.get(RpcClient).send(queue, { n: 1 }, { messageId: 'a', contentType: 'application/x-slow' });
    await decoding.promise;
    await apps.close(app);
    gate.resolve();
    // The decode's continuations run within the microtasks that follow: one macrotask covers them.
    await tick();
    await tick();
    expect(runs).toEqual([]);
    expect(await apps.broker.depth(queue)).toBe(1);
  });
});
