import { MessagingConfigError } from '../messaging.errors';
import type { IdempotencyClaim, IdempotencyStore } from '../interfaces/idempotency-store.interface';

export interface MemoryIdempotencyStoreOptions {
  /** Most keys kept; past it the least recently used go first. Default 100,000. */
  maxEntries?: number;
  /**
   * Most bytes kept: keys, tokens and stored replies, plus ENTRY_OVERHEAD_BYTES per key; past it
   * the least recently used keys go first. Default 64 MiB.
   */
  maxBytes?: number;
}

/**
 * What one key costs besides its strings and reply: the Map slot and the entry object (measured
 * on V8 at about 150 bytes; rounded up so the bound errs on the safe side).
 */
export const ENTRY_OVERHEAD_BYTES = 200;

interface Entry {
  /** Set while a run holds the key; absent once it is done. */
  token?: string;
  reply?: Buffer;
  expiresAt: number;
  /** What it counts against maxBytes. */
  bytes: number;
}

/**
 * Keys in this process's memory: dedupes the deliveries one instance sees (and the instances that
 * share this object, e.g. in tests), not those of other processes. Bounded in keys and in bytes
 * (replies can be large): least recently used keys are forgotten first, expired ones as soon as
 * they reach the front. A record larger than `maxBytes` on its own is not kept at all.
 */
export class MemoryIdempotencyStore implements IdempotencyStore {
  private readonly entries = new Map<string, Entry>();
  private readonly maxEntries: number;
  private readonly maxBytes: number;
  private heldBytes = 0;

  constructor(options: MemoryIdempotencyStoreOptions = {}) {
    this.maxEntries = positive(options.maxEntries, 'maxEntries', 100_000);
    this.maxBytes = positive(options.maxBytes, 'maxBytes', 64 * 1024 * 1024);
  }

  /** Keys held now, expired ones not yet dropped included. */
  get size(): number {
    return this.entries.size;
  }

  /** Bytes counted against maxBytes now. */
  get bytes(): number {
    return this.heldBytes;
  }

  async claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    const now = Date.now();
    const entry = this.entries.get(key);
    if (entry && entry.expiresAt > now) {
      this.put(key, entry);
      return entry.token === undefined ? { state: 'done', reply: entry.reply } : { state: 'busy' };
    }
    this.put(key, { token, expiresAt: now + leaseMs, bytes: sizeOf(key, token) });
    return { state: 'claimed' };
  }

  async complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    this.put(key, { reply, expiresAt: Date.now() + ttlMs, bytes: sizeOf(key, undefined, reply) });
  }

  async release(key: string, token: string): Promise<void> {
    if (this.entries.get(key)?.token === token) this.remove(key);
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    const entry = this.entries.get(key);
    const now = Date.now();
    if (entry?.token !== token || entry.expiresAt <= now) return false;
    entry.expiresAt = now + leaseMs;
    return true;
  }

  /** (Re)inserts at the back, the most recently used end, and trims the front. */
  private put(key: string, entry: Entry): void {
    this.remove(key);
    if (entry.bytes > this.maxBytes) return;
    this.entries.set(key, entry);
    this.heldBytes += entry.bytes;
    const now = Date.now();
    for (const [oldest, { expiresAt }] of this.entries) {
      if (this.entries.size <= this.maxEntries && this.heldBytes <= this.maxBytes && expiresAt > now) break;
      this.remove(oldest);
    }
  }

  private remove(key: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.entries.delete(key);
    this.heldBytes -= entry.bytes;
  }
}

/** Strings count two bytes a character (V8 may store them in one; the bound errs on the safe side). */
function sizeOf(key: string, token?: string, reply?: Buffer): number {
  return ENTRY_OVERHEAD_BYTES + 2 * (key.length + (token?.length ?? 0)) + (reply?.length ?? 0);
}

function positive(value: number | undefined, option: string, def: number): number {
  if (value === undefined) return def;
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MessagingConfigError(`MemoryIdempotencyStore option "${option}" must be a positive integer (got ${String(value)})`);
  }
  return value;
}
