import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Injectable } from '@nestjs/common';
import {
  MemoryIdempotencyStore,
  MessageHandler,
  MessagingConfigError,
  PostgresIdempotencyStore,
  RedisIdempotencyStore,
  RpcClient,
  type IdempotencyStore,
  type MessageContext,
  type MessageHandlerOptions,
} from '../../lib';
import { defineHandler } from '../../lib/topology/handler-definition';
import { resolveOptions } from '../../lib/messaging.options';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { deleteKeys, pgPool, redisClient, uniqueTable } from './databases';
import { WatchedStore } from './watched-store';

/**
 * `idempotent: true` handlers against each store, on RabbitMQ: each store is a fresh key space
 * (a MemoryIdempotencyStore, a Redis key prefix, a PostgreSQL table) removed after its test.
 */
const pool = pgPool();
const redis = redisClient();
afterAll(async () => {
  await pool.end();
  redis.disconnect();
});

interface StoreUnderTest {
  /** A store on this test's key space; called once per app instance, as separate processes would. */
  open(): IdempotencyStore;
  remove(): Promise<void>;
}

const STORES: Record<string, () => StoreUnderTest> = {
  memory: () => {
    // One process here: the instances share the object, as they would share Redis or PostgreSQL.
    const store = new MemoryIdempotencyStore();
    return { open: () => store, remove: async () => undefined };
  },
  redis: () => {
    const keyPrefix = `t-idempotency-${randomBytes(4).toString('hex')}:`;
    return { open: () => new RedisIdempotencyStore(redis, { keyPrefix }), remove: () => deleteKeys(redis, keyPrefix) };
  },
  postgres: () => {
    const table = uniqueTable('idempotency');
    return {
      open: () => new PostgresIdempotencyStore(pool, { table }),
      remove: async () => void (await pool.query(`DROP TABLE IF EXISTS ${table}`)),
    };
  },
};

/** Every run of a handler: the message id (undefined for a message without one). */
class Runs {
  readonly ids: string[] = [];

  count(id: string | undefined): number {
    return this.ids.filter((seen) => seen === id).length;
  }
}

/** An idempotent handler of `queue` that records its runs, then does `behaviour`. */
function handlerOf(
  queue: string,
  runs: Runs,
  behaviour: (payload: any, context: MessageContext) => unknown = () => undefined,
  options: MessageHandlerOptions = {},
) {
  @Injectable()
  class IdempotentHandler {
    @MessageHandler({ queue, idempotent: true, retry: { attempts: 3, delaysMs: [0] }, ...options })
    handle(payload: unknown, context: MessageContext): unknown {
      runs.ids.push(context.messageId);
      return behaviour(payload, context);
    }
  }
  return IdempotentHandler;
}

describe.each(Object.keys(STORES))('idempotent handlers with the %s store', (kind) => {
  const apps = appsUnderTest();
  let broker: Broker;
  let store: StoreUnderTest;

  beforeEach(async () => {
    broker = await Broker.open();
    store = STORES[kind]();
  });

  afterEach(async () => {
    await apps.closeAll();
    await broker.cleanup();
    await store.remove();
  });

  it('runs the handler once for a message id delivered twice', async () => {
    const queue = broker.queue(unique('idem-twice'), []);
    const runs = new Runs();
    const app = await apps.start(
      appModule({ idempotency: { store: store.open() } }, { providers: [handlerOf(queue, runs, undefined, { prefetch: 1 })] }),
    );
    const rpc = app.get(RpcClient);
    await rpc.send(queue, { n: 1 }, { messageId: 'a' });
    await rpc.send(queue, { n: 2 }, { messageId: 'a' });
    // One at a time (prefetch 1): once b has run, the copy of a before it was settled.
    await rpc.send(queue, { n: 3 }, { messageId: 'b' });
    await waitFor(() => runs.count('b') === 1, 'b to be handled');
    expect(runs.ids).toEqual(['a', 'b']);
    expect(await broker.depth(queue)).toBe(0);
  });

  it('two competing instances that get the same ids at once run each id once', async () => {
    const queue = broker.queue(unique('idem-competing'), []);
    const [first, second] = [new Runs(), new Runs()];
    // Slow enough that both copies of an id are in two handlers' hands at the same time.
    const slow = () => sleep(100);
    const stores = [new WatchedStore(store.open()), new WatchedStore(store.open())];
    await apps.start(appModule({ idempotency: { store: stores[0] }, prefetch: 50 }, { providers: [handlerOf(queue, first, slow)] }));
    const app = await apps.start(
      appModule({ idempotency: { store: stores[1] }, prefetch: 50 }, { providers: [handlerOf(queue, second, slow)] }),
    );
    const rpc = app.get(RpcClient);
    const ids: string[] = [];
    // Copies of one id back to back: round-robin hands them to different instances. A single
    // message before every other pair swaps which instance gets the first copy.
    for (let i = 0; i < 20; i++) {
      if (i % 2 === 1) {
        ids.push(`single-${i}`);
        await rpc.send(queue, {}, { messageId: `single-${i}` });
      }
      ids.push(`pair-${i}`);
      await Promise.all([rpc.send(queue, {}, { messageId: `pair-${i}` }), rpc.send(queue, {}, { messageId: `pair-${i}` })]);
    }
    await waitFor(() => first.ids.length + second.ids.length >= ids.length, 'every id to run');
    // Shutdown waits for every delivery, the duplicates waiting on the other instance included.
    await apps.closeAll();
    const all = [...first.ids, ...second.ids];
    expect(all.sort()).toEqual([...ids].sort());
    expect(first.ids.length).toBeGreaterThan(0);
    expect(second.ids.length).toBeGreaterThan(0);
    // The copies really met: a second claim found the first one's lease held, and waited it out.
    expect(stores[0].busy + stores[1].busy).toBeGreaterThan(0);
    // Every duplicate was settled by finding its id done (20 pairs, one copy of each dropped).
    expect(stores[0].done + stores[1].done).toBe(20);
    expect(await broker.depth(queue)).toBe(0);
  });

  it('a failing first try releases its claim: the retry runs, and later copies do not', async () => {
    const queue = broker.queue(unique('idem-retry'), []);
    const runs = new Runs();
    const failFirst = (_: unknown, context: MessageContext) => {
      if (context.attempt === 1) throw new Error('first try fails');
    };
    const app = await apps.start(
      appModule({ idempotency: { store: store.open() } }, { providers: [handlerOf(queue, runs, failFirst, { prefetch: 1 })] }),
    );
    const rpc = app.get(RpcClient);
    await rpc.send(queue, {}, { messageId: 'a' });
    await waitFor(() => runs.count('a') === 2, 'the retry of a');
    await rpc.send(queue, {}, { messageId: 'a' });
    await rpc.send(queue, {}, { messageId: 'b' });
    await waitFor(() => runs.count('b') === 2, 'b (and its retry)');
    expect(runs.count('a')).toBe(2);
  });

  it('forgets a handled id after the TTL', async () => {
    const queue = broker.queue(unique('idem-ttl'), []);
    const runs = new Runs();
    const app = await apps.start(
      appModule({ idempotency: { store: store.open(), ttlMs: 600 } }, { providers: [handlerOf(queue, runs, undefined, { prefetch: 1 })] }),
    );
    const rpc = app.get(RpcClient);
    await rpc.send(queue, {}, { messageId: 'a' });
    await waitFor(() => runs.count('a') === 1, 'a to be handled');
    await rpc.send(queue, {}, { messageId: 'a' });
    await rpc.send(queue, {}, { messageId: 'b' });
    await waitFor(() => runs.count('b') === 1, 'b to be handled');
    expect(runs.count('a')).toBe(1);
    await sleep(700);
    await rpc.send(queue, {}, { messageId: 'a' });
    await waitFor(() => runs.count('a') === 2, 'a to run again after the TTL');
  });

  it('answers a duplicate request with the stored reply (JSON and bytes)', async () => {
    const queue = broker.queue(unique('idem-reply'), []);
    const replies = broker.queue(unique('idem-replies'), []);
    await broker.channel.assertQueue(replies, { durable: true });
    const runs = new Runs();
    const answer = (payload: { bytes: boolean }) => (payload.bytes ? Buffer.from(randomBytes(16)) : { token: randomUUID() });
    const app = await apps.start(
      appModule({ idempotency: { store: store.open() } }, { providers: [handlerOf(queue, runs, answer, { prefetch: 1 })] }),
    );
    const rpc = app.get(RpcClient);
    for (const id of ['json', 'json', 'bytes', 'bytes'])
      await rpc.send(queue, { bytes: id === 'bytes' }, { messageId: id, replyTo: replies });
    const received: Awaited<ReturnType<Broker['drainQueue']>> = [];
    await waitFor(async () => (received.push(...(await broker.drainQueue(replies))), received.length >= 4), 'four replies');
    expect(runs.ids).toEqual(['json', 'bytes']);
    const [json1, json2, bytes1, bytes2] = received;
    expect(json1.properties.correlationId).toBe('json');
    expect(json2.properties.correlationId).toBe('json');
    expect(json2.content.toString()).toBe(json1.content.toString());
    expect(JSON.parse(json1.content.toString())).toEqual({ token: expect.any(String) });
    expect(bytes2.properties.contentType).toBe('application/octet-stream');
    expect(bytes2.content.equals(bytes1.content)).toBe(true);
    expect(bytes1.content.length).toBe(16);
  });
});

describe('idempotency without a store of its own', () => {
  const apps = appsUnderTest();
  let broker: Broker;

  beforeEach(async () => (broker = await Broker.open()));
  afterEach(async () => {
    await apps.closeAll();
    await broker.cleanup();
  });

  it('idempotency.default makes every handler idempotent (default store: memory); a message without an id always runs', async () => {
    const queue = broker.queue(unique('idem-default'), []);
    const runs = new Runs();
    @Injectable()
    class PlainHandler {
      @MessageHandler({ queue, prefetch: 1, retry: false })
      handle(_: unknown, context: MessageContext): void {
        runs.ids.push(context.messageId);
      }
    }
    const app = await apps.start(appModule({ idempotency: { default: true } }, { providers: [PlainHandler] }));
    const rpc = app.get(RpcClient);
    broker.publishRaw(queue, '{}');
    broker.publishRaw(queue, '{}');
    // The raw publishes go over another connection: they are handled first, so the order below is theirs then ours.
    await waitFor(() => runs.ids.length === 2, 'the two messages without an id');
    await rpc.send(queue, {}, { messageId: 'a' });
    await rpc.send(queue, {}, { messageId: 'a' });
    await rpc.send(queue, {}, { messageId: 'b' });
    await waitFor(() => runs.count('b') === 1, 'b to be handled');
    // The two without an id each ran, under an id made for each delivery.
    expect(runs.ids).toEqual([expect.any(String), expect.any(String), 'a', 'b']);
    expect(runs.ids[0]).not.toBe(runs.ids[1]);
  });
});

describe('idempotent batch handlers and explicit settlement', () => {
  const apps = appsUnderTest();
  let broker: Broker;

  beforeEach(async () => (broker = await Broker.open()));
  afterEach(async () => {
    await apps.closeAll();
    await broker.cleanup();
  });

  it('claims each message of a batch: a duplicate is left out of every batch', async () => {
    const queue = broker.queue(unique('idem-batch'), []);
    const batches: string[][] = [];
    @Injectable()
    class BatchHandler {
      @MessageHandler({ queue, idempotent: true, batch: { size: 3, timeoutMs: 100 }, retry: false })
      handle(_: unknown[], contexts: MessageContext[]): void {
        batches.push(contexts.map((context) => context.messageId));
      }
    }
    const app = await apps.start(appModule({}, { providers: [BatchHandler] }));
    const rpc = app.get(RpcClient);
    for (const id of ['a', 'a', 'b', 'c', 'a']) await rpc.send(queue, {}, { messageId: id });
    await waitFor(() => batches.flat().length === 3, 'a, b and c');
    await sleep(300);
    expect(batches.flat().sort()).toEqual(['a', 'b', 'c']);
    expect(await broker.depth(queue)).toBe(0);
  });

  it('a handler that settles its message itself is not recorded as done: the retry it asked for runs', async () => {
    const queue = broker.queue(unique('idem-settle'), []);
    const runs = new Runs();
    const attempts: number[] = [];
    const retryFirst = async (_: unknown, context: MessageContext) => {
      attempts.push(context.attempt);
      if (context.attempt === 1) await context.retry({ delayMs: 0 });
    };
    await apps.start(appModule({}, { providers: [handlerOf(queue, runs, retryFirst)] }));
    broker.publishRaw(queue, '{}', { messageId: 'a' });
    await waitFor(() => runs.count('a') === 2, 'the retry the handler asked for');
    await waitFor(async () => (await broker.depth(queue)) === 0, 'the retry to be settled');
    expect(attempts).toEqual([1, 2]);
    expect(await broker.depth(`${queue}.dlq`)).toBe(0);
  });
});

describe('idempotency options and stores', () => {
  it('refuses a wrong option, naming it', () => {
    expect(() => resolveOptions({ uri: 'amqp://x', idempotency: { ttl: 5 } as never })).toThrow(MessagingConfigError);
    expect(() => resolveOptions({ uri: 'amqp://x', idempotency: { ttl: 5 } as never })).toThrow('"idempotency" has no "ttl"');
    expect(() => resolveOptions({ uri: 'amqp://x', idempotency: { ttlMs: 0 } })).toThrow('"idempotency.ttlMs"');
    expect(() => resolveOptions({ uri: 'amqp://x', idempotency: { store: {} as never } })).toThrow('"idempotency.store"');
    const module = resolveOptions({ uri: 'amqp://x', idempotency: { default: true } });
    expect(() => defineHandler('A.a', { queue: 'q', idempotent: 'yes' as never }, module, 'i')).toThrow(
      '@MessageHandler on A.a: "idempotent" must be true or false',
    );
    expect(defineHandler('A.a', { queue: 'q' }, module, 'i').idempotent).toBe(true);
    expect(defineHandler('A.a', { queue: 'q', idempotent: false }, module, 'i').idempotent).toBe(false);
    expect(defineHandler('A.a', { queue: 'q' }, resolveOptions({ uri: 'amqp://x' }), 'i').idempotent).toBe(false);
  });

  it('the memory store keeps at most maxEntries keys, forgetting the least recently used', async () => {
    const store = new MemoryIdempotencyStore({ maxEntries: 2 });
    for (const key of ['a', 'b']) await store.complete(key, 60_000);
    expect(await store.claim('a', 't', 1000)).toEqual({ state: 'done', reply: undefined }); // a is now the most recent
    await store.complete('c', 60_000);
    expect(store.size).toBe(2);
    expect(await store.claim('c', 't', 1000)).toEqual({ state: 'done', reply: undefined });
    expect(await store.claim('b', 't', 1000)).toEqual({ state: 'claimed' }); // the least recently used went
  });

  it('a claim held by one run is busy for the others until released by its own token only', async () => {
    const stores = { memory: STORES.memory(), redis: STORES.redis(), postgres: STORES.postgres() };
    try {
      for (const [kind, { open }] of Object.entries(stores)) {
        const store = open();
        expect(await store.claim('k', 'one', 60_000), kind).toEqual({ state: 'claimed' });
        expect(await store.claim('k', 'two', 60_000), kind).toEqual({ state: 'busy' });
        await store.release('k', 'two');
        expect(await store.claim('k', 'two', 60_000), kind).toEqual({ state: 'busy' });
        await store.release('k', 'one');
        expect(await store.claim('k', 'two', 60_000), kind).toEqual({ state: 'claimed' });
        // Only the holder renews its claim, and only while it is a claim.
        expect(await store.renew!('k', 'one', 60_000), kind).toBe(false);
        expect(await store.renew!('k', 'two', 60_000), kind).toBe(true);
        await store.complete('k', 60_000);
        expect(await store.renew!('k', 'two', 60_000), kind).toBe(false);
        expect(await store.claim('k', 'three', 60_000), kind).toEqual({ state: 'done', reply: undefined });
        // A renewal keeps a short claim past its first lease.
        expect(await store.claim('renewed', 'one', 100), kind).toEqual({ state: 'claimed' });
        expect(await store.renew!('renewed', 'one', 60_000), kind).toBe(true);
        await sleep(150);
        expect(await store.claim('renewed', 'two', 60_000), kind).toEqual({ state: 'busy' });
        // An expired claim is free again.
        expect(await store.claim('short', 'one', 30), kind).toEqual({ state: 'claimed' });
        await sleep(60);
        expect(await store.claim('short', 'two', 60_000), kind).toEqual({ state: 'claimed' });
      }
    } finally {
      for (const { remove } of Object.values(stores)) await remove();
    }
  });

  it('the PostgreSQL store deletes expired rows', async () => {
    const table = uniqueTable('idempotency');
    try {
      const store = new PostgresIdempotencyStore(pool, { table, cleanupIntervalMs: 0 });
      await store.claim('first', 't', 60_000); // creates the table on first use
      await store.complete('old', 1);
      await sleep(20);
      await store.claim('new', 't', 60_000);
      await waitFor(async () => (await pool.query(`SELECT key FROM ${table}`)).rows.length === 2, 'the expired row to be deleted', 3_000);
      expect((await pool.query(`SELECT key FROM ${table} ORDER BY key`)).rows.map((row) => row.key)).toEqual(['first', 'new']);
    } finally {
      await pool.query(`DROP TABLE IF EXISTS ${table}`);
    }
  });
});
