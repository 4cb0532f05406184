import { MessagingConfigError } from '../messaging.errors';
import type { IdempotencyClaim, IdempotencyStore } from './idempotency-store.interface';

export interface MemoryIdempotencyStoreOptions {
  /** Most keys kept; past it the least recently used go first. Default 100,000. */
  maxEntries?: number;
}

interface Entry {
  /** Set while a run holds the key; absent once it is done. */
  token?: string;
  reply?: Buffer;
  expiresAt: number;
}

/**
 * Keys in this process's memory: dedupes the deliveries one instance sees (and the instances that
 * share this object, e.g. in tests), not those of other processes. Bounded: least recently used
 * keys are forgotten first, expired ones as soon as they reach the front.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    const { maxEntries = 100_000 } = options;
    if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
      throw new MessagingConfigError(`MemoryIdempotencyStore option "maxEntries" must be a positive integer (got ${String(maxEntries)})`);
    }
    this.maxEntries = maxEntries;
  }

  /** Keys held now, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }

  async claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.put(key, entry);
      return entry.token === undefined ? { state: 'done', reply: entry.reply } : { state: 'busy' };
    }
    this.put(key, { token, expiresAt: now + leaseMs });
    return { state: 'claimed' };
  }

  async complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    this.put(key, { reply, expiresAt: Date.now() + ttlMs });
  }

  async release(key: string, token: string): Promise<void> {
    if (this.entries.get(key)?.token === token) this.entries.delete(key);
  }

  /** (Re)inserts at the back, the most recently used end, and trims the front. */
  private put(key: string, entry: Entry): void {
    this.entries.delete(key);
    this.entries.set(key, entry);
    const now = Date.now();
    for (const [oldest, { expiresAt }] of this.entries) {
      if (this.entries.size <= this.maxEntries && expiresAt > now) break;
      this.entries.delete(oldest);
    }
  }
}
