import { MessagingConfigError } from '../messaging.errors';
import { connectWithin, deadline, QueryTimeoutError } from './query-deadline';
import type { PgPool, SqlRunner } from '../interfaces/sql.interface';

/** A table name checked once and quoted for SQL, with the bare name for its indexes. */
export interface PgTable {
  /** As given, e.g. `messaging_outbox` or `app.messaging_outbox`. */
  name: string;
  /** Quoted for statements: `"app"."messaging_outbox"`. */
  sql: string;
  /** The name without its schema, for naming indexes. */
  base: string;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** `table` or `schema.table`, plain identifiers only: names never reach SQL unchecked. */
export function pgTable(name: unknown, option: string): PgTable {
  const parts = typeof name === 'string' ? name.split('.') : [];
  if (parts.length === 0 || parts.length > 2 || !parts.every((part) => IDENTIFIER.test(part))) {
    throw new MessagingConfigError(
      `${option} must be a table name, optionally with its schema ("name" or "schema.name", letters, digits and _) (got ${JSON.stringify(name)})`,
    );
  }
  return { name: name as string, sql: parts.map((part) => `"${part}"`).join('.'), base: parts[parts.length - 1] };
}

/**
 * How long the relay waits for PostgreSQL: `queryMs` for a connection and for each statement (on
 * the client, and as the transaction's `statement_timeout` on the server), `idleMs` for the
 * transaction to go on between two statements (`idle_in_transaction_session_timeout`: a session
 * whose client vanished mid-batch ends, and its row locks go with it).
 */
export interface QueryLimits {
  queryMs: number;
  idleMs: number;
}

/**
 * Runs `work` on a connection of the pool and gives it back; a connection that failed is closed,
 * not given back. While it is checked out, pg reports a lost connection as an `error` event on
 * the client, which would crash the process without a listener: the failing query rejects with
 * the reason anyway. With `queryMs`, getting the connection and each statement have that deadline.
 */
export async function withClient<T>(pool: PgPool, work: (client: SqlRunner) => Promise<T>, queryMs?: number): Promise<T> {
  const client = queryMs === undefined ? await pool.connect() : await connectWithin(pool, queryMs);
  let failure: Error | undefined;
  const onError = (error: Error) => (failure ??= error);
  client.on('error', onError);
  const runner: SqlRunner =
    queryMs === undefined
      ? client
      : { query: (text, values) => deadline(client.query(text, values), queryMs, `"${text.trim().split(/\s/)[0]}"`) };
  try {
    return await work(runner);
  } catch (error) {
    failure ??= error as Error;
    throw error;
  } finally {
    client.removeListener('error', onError);
    client.release(failure);
  }
}

/** Runs `work` in a transaction: COMMIT after it, ROLLBACK if it throws. */
export function inTransaction<T>(pool: PgPool, work: (client: SqlRunner) => Promise<T>, limits?: QueryLimits): Promise<T> {
  return withClient(
    pool,
    async (client) => {
      // One round trip; SET LOCAL ends with the transaction, so the pool's connection keeps its settings.
      await client.query(
        limits
          ? `BEGIN; SET LOCAL statement_timeout = ${limits.queryMs}; SET LOCAL idle_in_transaction_session_timeout = ${limits.idleMs}`
          : 'BEGIN',
      );
      try {
        const result = await work(client);
        await client.query('COMMIT');
        return result;
      } catch (error) {
        // A connection that stopped answering is closed, which rolls back: a ROLLBACK would only wait behind the lost statement.
        if (!(error instanceof QueryTimeoutError)) await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    },
    limits?.queryMs,
  );
}

/**
 * Runs DDL (CREATE ... IF NOT EXISTS) under a transaction-scoped advisory lock on the table's
 * name: instances that start together would otherwise race on the catalog (a duplicate type
 * error for the loser of two concurrent CREATE TABLE IF NOT EXISTS).
 */
export function createOnce(pool: PgPool, table: PgTable, statements: string[]): Promise<void> {
  return inTransaction(pool, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [table.name]);
    for (const statement of statements) await client.query(statement);
  });
}
