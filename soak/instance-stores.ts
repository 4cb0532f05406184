/**
 * The databases of an instance, each reached through the fault driver's TCP proxy (so it can stall
 * and reset them) and named by `application_name` (so it can terminate their backends): one `pg`
 * pool for the outbox, its relay and the PostgreSQL idempotency store, one Redis client.
 */
import { Redis } from 'ioredis';
import { Pool } from 'pg';
import { PostgresIdempotencyStore, RedisIdempotencyStore, type IdempotencyClaim, type IdempotencyStore } from '../lib';
import { names } from './protocol';

export interface InstanceStores {
  pool: Pool;
  redis: Redis;
  /** The idempotency store of the module: each idempotent queue's keys in the store named by its queue. */
  idempotency: IdempotencyStore;
  close(): Promise<void>;
}

export function openStores(prefix: string, label: string, pgPort: number, redisPort: number): InstanceStores {
  const n = names(prefix);
  const pool = new Pool({
    host: '127.0.0.1',
    port: pgPort,
    user: 'postgres',
    database: process.env.PGDATABASE ?? 'test',
    application_name: `${prefix}-${label}`,
    max: 6,
    connectionTimeoutMillis: 5000,
  });
  // An idle connection reset by a fault is reported here; pg would crash the process without a listener.
  pool.on('error', () => undefined);
  const redis = new Redis({ host: '127.0.0.1', port: redisPort, maxRetriesPerRequest: 2, connectTimeout: 5000 });
  redis.on('error', () => undefined); // ioredis reconnects by itself; the failing command rejects
  const pg = new PostgresIdempotencyStore(pool, { table: n.idempotencyTable });
  const red = new RedisIdempotencyStore(redis, { keyPrefix: n.redisKeyPrefix });
  const pgQueue = n.feature('idem-pg');
  return {
    pool,
    redis,
    idempotency: new ByQueue((key) => (key.startsWith(`${pgQueue}:`) ? pg : red)),
    close: async () => {
      await pool.end().catch(() => undefined);
      redis.disconnect();
    },
  };
}

/** One module, two stores: the guard's key starts with the handler's queue, which picks the store. */
class ByQueue implements IdempotencyStore {
  constructor(private readonly pick: (key: string) => IdempotencyStore) {}

  claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    return this.pick(key).claim(key, token, leaseMs);
  }

  complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    return this.pick(key).complete(key, ttlMs, reply);
  }

  release(key: string, token: string): Promise<void> {
    return this.pick(key).release(key, token);
  }
}
