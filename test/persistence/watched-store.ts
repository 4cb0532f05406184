import type { IdempotencyClaim, IdempotencyStore } from '../../lib';

/**
 * An idempotency store around a real one that counts what the guard asks and what the store
 * answered, so a test can prove what happened: a claim that found another run's lease (`busy`),
 * a duplicate found done, a claim that failed, a renewal.
 */
export class WatchedStore implements IdempotencyStore {
  claims = 0;
  failures = 0;
  busy = 0;
  done = 0;
  renewals = 0;
  releases = 0;

  constructor(private readonly inner: IdempotencyStore) {}

  async claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    this.claims++;
    try {
      const claim = await this.inner.claim(key, token, leaseMs);
      if (claim.state === 'busy') this.busy++;
      if (claim.state === 'done') this.done++;
      return claim;
    } catch (error) {
      this.failures++;
      throw error;
    }
  }

  complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    return this.inner.complete(key, ttlMs, reply);
  }

  release(key: string, token: string): Promise<void> {
    this.releases++;
    return this.inner.release(key, token);
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    this.renewals++;
    return (await this.inner.renew?.(key, token, leaseMs)) ?? false;
  }
}
