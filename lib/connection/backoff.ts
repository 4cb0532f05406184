/**
 * Full-jitter exponential backoff: attempt n waits a random time in [base, min(max, initial * 2^n)],
 * so a fleet of clients that lost the broker together does not reconnect in lockstep.
 */
export function backoffDelay(attempt: number, initialMs: number, maxMs: number, random = Math.random): number {
  const ceiling = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  const floor = Math.min(initialMs, ceiling);
  return Math.round(floor + random() * (ceiling - floor));
}
