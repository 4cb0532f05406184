import type { IdempotencyClaim, IdempotencyStore } from '../interfaces/idempotency-store.interface';

/**
 * The part of an ioredis client (`new Redis(...)`, or a Cluster) this store uses. Typed here
 * rather than imported, so the library neither loads nor needs ioredis unless the app passes one.
 */
export interface RedisScriptClient {
  eval(script: string, numKeys: number, ...args: Array<string | number>): Promise<unknown>;
}

export interface RedisIdempotencyStoreOptions {
  /** Put before every key. Default `messaging:idempotency:`. */
  keyPrefix?: string;
}

/**
 * A claim is `SET key p:<token> NX PX lease`; a finished run overwrites it with `d:<reply as
 * base64>` and the TTL; Redis expires both. Each operation is one script, so it is atomic
 * without a transaction, and one round trip.
 */
const CLAIM = `if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return '' end
return redis.call('GET', KEYS[1])`;
const COMPLETE = `return redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])`;
const RELEASE = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

const HELD = 'p:';
const DONE = 'd:';

/** Keys in Redis, shared by every instance that uses the same server. */
export class RedisIdempotencyStore implements IdempotencyStore {
  private readonly prefix: string;

  constructor(
    private readonly redis: RedisScriptClient,
    options: RedisIdempotencyStoreOptions = {},
  ) {
    this.prefix = options.keyPrefix ?? 'messaging:idempotency:';
  }

  async claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    for (;;) {
      const value = await this.redis.eval(CLAIM, 1, this.prefix + key, HELD + token, leaseMs);
      if (value === '') return { state: 'claimed' };
      if (typeof value !== 'string') continue; // expired between the SET and the GET: claim again
      if (!value.startsWith(DONE)) return { state: 'busy' };
      const reply = value.slice(DONE.length);
      return { state: 'done', reply: reply === '' ? undefined : Buffer.from(reply, 'base64') };
    }
  }

  async complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    await this.redis.eval(COMPLETE, 1, this.prefix + key, DONE + (reply?.toString('base64') ?? ''), ttlMs);
  }

  async release(key: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.prefix + key, HELD + token);
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    return (await this.redis.eval(RENEW, 1, this.prefix + key, HELD + token, leaseMs)) === 1;
  }
}
