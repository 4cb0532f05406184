/**
 * What a store answers to a claim on a key (a handler's queue and a message id):
 * - `claimed`: nobody holds the key, or its record expired; the caller now holds it and runs the handler;
 * - `done`: a run with this key succeeded within the TTL; `reply` is what it returned, as stored;
 * - `busy`: another run holds the key and has not finished (nor has its claim expired).
 */
export type IdempotencyClaim = { state: 'claimed' } | { state: 'busy' } | { state: 'done'; reply?: Buffer };

/**
 * Where idempotent handlers record the messages they handled. A store for another database needs
 * these three operations, each atomic on its key (and may add the fourth, `renew`):
 *
 * - `claim(key, token, leaseMs)`: when the key has no record, or its record expired, records
 *   "held by `token`" expiring in `leaseMs` and answers `claimed`; otherwise answers `done` (with
 *   the stored reply) or `busy`. Two claims at once on a free key: exactly one gets `claimed`.
 * - `complete(key, ttlMs, reply?)`: records "done" (with `reply`, opaque bytes) expiring in
 *   `ttlMs`, whoever holds the key.
 * - `release(key, token)`: removes the record only while it is still the claim of `token` (a
 *   claim that expired and was taken by another run is left alone), so a retry can run.
 * - `renew(key, token, leaseMs)`: while the key is still the live claim of `token`, makes it
 *   expire `leaseMs` from now and answers true; otherwise (expired, taken, done) answers false.
 *   Optional: without it a handler that outlives its lease is only warned about (log), and a copy
 *   arriving after the lease may run alongside it.
 *
 * Expired records must read as absent; removing them is up to the store. A store that throws (or
 * does not answer within `idempotency.storeTimeoutMs`) is taken as unreachable: the message goes
 * back to its queue, uncounted, and is tried again after a back-off.
 */
export interface IdempotencyStore {
  claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim>;
  complete(key: string, ttlMs: number, reply?: Buffer): Promise<void>;
  release(key: string, token: string): Promise<void>;
  renew?(key: string, token: string, leaseMs: number): Promise<boolean>;
}
