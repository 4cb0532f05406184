import { MessagingError } from '../messaging.errors';
import { withinOrThrow } from '../util/within';
import type { PgClient, PgPool } from '../interfaces/sql.interface';

/**
 * PostgreSQL did not answer in time. On a half-open connection (the network lost what was in
 * flight, or the server went away without a word) no answer ever comes and the socket reports
 * nothing: the connection that timed out is closed, never used again.
 */
export class QueryTimeoutError extends MessagingError {}

/** `promise`, or a QueryTimeoutError naming `what` once `ms` passed first. */
export function deadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return withinOrThrow(
    promise,
    ms,
    () => new QueryTimeoutError(`PostgreSQL did not answer ${what} within ${ms} ms (outbox.queryTimeoutMs)`),
  );
}

/**
 * A connection of the pool within `ms`. One that comes later (a handshake stuck on a stalled
 * network, a pool that was full) is closed as it arrives: nobody waits for it any more, and the
 * pool would count it as checked out forever.
 */
export async function connectWithin(pool: PgPool, ms: number): Promise<PgClient> {
  const connecting = pool.connect();
  try {
    return await deadline(connecting, ms, 'with a connection');
  } catch (error) {
    if (error instanceof QueryTimeoutError)
      void connecting.then(
        (late) => late.release(true),
        () => undefined,
      );
    throw error;
  }
}
