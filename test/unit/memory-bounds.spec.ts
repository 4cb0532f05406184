import { Injectable } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MemoryIdempotencyStore, MessageHandler, MessagingConfigError, MessagingModule } from '../../lib';
import { ENTRY_OVERHEAD_BYTES } from '../../lib/idempotency/memory-idempotency.store';
import { resolveOptions } from '../../lib/messaging.options';

/**
 * Memory bounded in total (case 60): the bytes the prefetched deliveries of an instance can hold
 * (`maxPrefetchedBytes`, checked at startup) and the bytes of the memory idempotency store.
 */
describe('MemoryIdempotencyStore bounded in bytes', () => {
  const KIB = 1024;

  it('keeps at most maxBytes of keys and replies, forgetting the least recently used first', async () => {
    const store = new MemoryIdempotencyStore({ maxBytes: 10 * KIB });
    for (let i = 0; i < 40; i++) await store.complete(`k${i}`, 60_000, Buffer.alloc(KIB));
    expect(store.bytes).toBeLessThanOrEqual(10 * KIB);
    // Each record costs its reply, its key and the per-entry overhead: fewer than ten fit.
    const fit = Math.floor((10 * KIB) / (KIB + ENTRY_OVERHEAD_BYTES + 2 * 'k00'.length));
    expect(store.size).toBe(fit);
    expect(await store.claim('k39', 't', 1_000)).toEqual({ state: 'done', reply: Buffer.alloc(KIB) });
    expect(await store.claim('k0', 't', 1_000)).toEqual({ state: 'claimed' });
    expect(store.bytes).toBeLessThanOrEqual(10 * KIB);
  });

  it('a reply larger than maxBytes on its own is not kept, and evicts nothing', async () => {
    const store = new MemoryIdempotencyStore({ maxBytes: 4 * KIB });
    await store.complete('small', 60_000);
    expect(await store.claim('big', 't', 60_000)).toEqual({ state: 'claimed' });
    await store.complete('big', 60_000, Buffer.alloc(8 * KIB));
    expect(await store.claim('small', 't', 1_000)).toEqual({ state: 'done', reply: undefined });
    // Forgotten, claim included: a copy runs again rather than the store growing past its bound.
    expect(await store.claim('big', 'u', 1_000)).toEqual({ state: 'claimed' });
    expect(store.bytes).toBeLessThanOrEqual(4 * KIB);
  });

  it('counts a released or replaced key out again', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('a', 't', 60_000);
    await store.complete('a', 60_000, Buffer.alloc(100));
    const held = store.bytes;
    expect(held).toBeGreaterThanOrEqual(100 + ENTRY_OVERHEAD_BYTES);
    await store.claim('b', 't', 60_000);
    await store.release('b', 't');
    expect(store.bytes).toBe(held);
  });

  it('renews only a live claim of the same token', async () => {
    const store = new MemoryIdempotencyStore();
    await store.claim('a', 'one', 50);
    expect(await store.renew('a', 'two', 60_000)).toBe(false);
    expect(await store.renew('a', 'one', 60_000)).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 80));
    expect(await store.claim('a', 'two', 60_000)).toEqual({ state: 'busy' }); // renewed past its first 50 ms
    await store.complete('a', 60_000);
    expect(await store.renew('a', 'one', 60_000)).toBe(false);
  });

  it('refuses a bad bound, naming it', () => {
    expect(() => new MemoryIdempotencyStore({ maxBytes: 0 })).toThrow(MessagingConfigError);
    expect(() => new MemoryIdempotencyStore({ maxBytes: 1.5 })).toThrow(
      'MemoryIdempotencyStore option "maxBytes" must be a positive integer (got 1.5)',
    );
    expect(() => new MemoryIdempotencyStore({ maxEntries: -1 })).toThrow('"maxEntries"');
  });
});

describe('maxPrefetchedBytes: a ceiling on what prefetched deliveries hold', () => {
  let run = 0;

  function handlers(prefetch: number) {
    @Injectable()
    class Handlers {
      @MessageHandler({ queue: 'bounds.orders', prefetch })
      orders(): void {}

      @MessageHandler({ queue: 'bounds.audit', prefetch: 2, batch: { size: 4, timeoutMs: 10 } })
      audit(): void {}
    }
    return Handlers;
  }

  async function start(options: { prefetch: number; maxMessageBytes: number; maxPrefetchedBytes?: number }) {
    const module = await Test.createTestingModule({
      imports: [
        MessagingModule.forRoot({
          uri: `memory://bounds-${++run}`,
          maxMessageBytes: options.maxMessageBytes,
          maxPrefetchedBytes: options.maxPrefetchedBytes,
        }),
      ],
      providers: [handlers(options.prefetch)],
    }).compile();
    const app = module.createNestApplication();
    try {
      await app.init();
    } finally {
      await app.close().catch(() => undefined);
    }
  }

  it('refuses a bad value at startup, naming the option', () => {
    expect(() => resolveOptions({ uri: 'amqp://x', maxPrefetchedBytes: 0 })).toThrow(
      'MessagingModule option "maxPrefetchedBytes" must be an integer from 1',
    );
    expect(() => resolveOptions({ uri: 'amqp://x', maxPrefetchedBytes: '1MB' as never })).toThrow(MessagingConfigError);
    expect(resolveOptions({ uri: 'amqp://x' }).maxPrefetchedBytes).toBeUndefined();
  });

  it('fails startup when the handler queues could prefetch more than it, naming each queue and what it may hold', async () => {
    // orders: 10 × 1 MiB; audit: its batch lifts its prefetch to 4, so 4 × 1 MiB. 14 MiB > 8 MiB.
    const failure = start({ prefetch: 10, maxMessageBytes: 1024 * 1024, maxPrefetchedBytes: 8 * 1024 * 1024 });
    await expect(failure).rejects.toThrow(MessagingConfigError);
    await expect(failure).rejects.toThrow(
      'MessagingModule option "maxPrefetchedBytes" (8388608) is less than the 14680064 bytes the handler queues may hold prefetched ' +
        '(prefetch × maxMessageBytes: "bounds.orders" 10 × 1048576, "bounds.audit" 4 × 1048576): lower "prefetch" or "maxMessageBytes", or raise "maxPrefetchedBytes"',
    );
  });

  it('starts when the ceiling holds', async () => {
    await expect(start({ prefetch: 4, maxMessageBytes: 1024 * 1024, maxPrefetchedBytes: 8 * 1024 * 1024 })).resolves.toBeUndefined();
  });
});
