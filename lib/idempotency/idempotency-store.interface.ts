/**
 * What a store answers to a claim on a key (a handler's queue and a message id):
 * - `claimed`: nobody holds the key, or its record expired; the caller now holds it and runs the handler;
 * - `done`: a run with this key succeeded within the TTL; `reply` is what it returned, as stored;
 * - `busy`: another run holds the key and has not finished (nor has its claim expired).
 */
export type IdempotencyClaim = { state: 'claimed' } | { state: 'busy' } | { state: 'done'; reply?: Buffer };

/**
 * Where idempotent handlers record the messages they handled. A store for another database needs
 * these three operations, each atomic on its key:
 *
 * - `claim(key, token, leaseMs)`: when the key has no record, or its record expired, records
 *   "held by `token`" expiring in `leaseMs` and answers `claimed`; otherwise answers `done` (with
 *   the stored reply) or `busy`. Two claims at once on a free key: exactly one gets `claimed`.
 * - `complete(key, ttlMs, reply?)`: records "done" (with `reply`, opaque bytes) expiring in
 *   `ttlMs`, whoever holds the key.
 * - `release(key, token)`: removes the record only while it is still the claim of `token` (a
 *   claim that expired and was taken by another run is left alone), so a retry can run.
 *
 * Expired records must read as absent; removing them is up to the store.
 */
export interface IdempotencyStore {
  claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim>;
  complete(key: string, ttlMs: number, reply?: Buffer): Promise<void>;
  release(key: string, token: string): Promise<void>;
}
