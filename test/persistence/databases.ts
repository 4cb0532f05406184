import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { Pool, type PoolClient, type PoolConfig } from 'pg';

/** PostgreSQL and Redis as this machine and CI run them (trust auth, database `test`). */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A pool whose idle connections may be killed by a test without crashing the run. */
export function pgPool(config: PoolConfig = {}): Pool {
  const pool = new Pool({ connectionString: DATABASE_URL, max: 5, ...config });
  pool.on('error', () => undefined);
  return pool;
}

/** The pools a test opens (`open`), ended after it (`endAll`). */
export function testPools(): { open(config?: PoolConfig): Pool; endAll(): Promise<void> } {
  const pools: Pool[] = [];
  return {
    open(config = {}) {
      const opened = pgPool(config);
      pools.push(opened);
      return opened;
    },
    async endAll() {
      for (const pool of pools.splice(0)) await pool.end();
    },
  };
}

/** Runs `work` in a transaction on a connection of `on`, ended with `end`, as an app's service would. */
export async function transaction(
  on: Pool,
  work: (client: PoolClient) => Promise<void>,
  end: 'COMMIT' | 'ROLLBACK' = 'COMMIT',
): Promise<void> {
  const client = await on.connect();
  try {
    await client.query('BEGIN');
    await work(client);
    await client.query(end);
  } finally {
    client.release();
  }
}

export function redisClient(): Redis {
  return new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });
}

/** A table name no other test uses (letters, digits, _); tests drop theirs. */
export function uniqueTable(label: string): string {
  return `t_${label}_${randomBytes(4).toString('hex')}`;
}

/** Deletes every Redis key that starts with `prefix`. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    if (keys.length > 0) await redis.del(...keys);
    cursor = next;
  } while (cursor !== '0');
}
