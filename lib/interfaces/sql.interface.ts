/**
 * The parts of `pg` this library uses, typed here rather than imported: the library neither
 * loads nor needs `pg` unless the app passes a Pool. A `pg` Pool and PoolClient fit as they are.
 */
export interface SqlResult {
  rows: any[];
  rowCount: number | null;
}

/**
 * Runs a statement with `$1`-style parameters on one connection: a `pg` client inside the
 * caller's transaction, or (for the outbox's writes, whose result is not read) a TypeORM
 * QueryRunner or EntityManager of a transaction.
 */
export interface SqlExecutor {
  query(text: string, values?: unknown[]): Promise<unknown>;
}

/** What runs statements and reads their rows: a pool, or one connection of it. */
export interface SqlRunner {
  query(text: string, values?: unknown[]): Promise<SqlResult>;
}

export interface PgClient extends SqlRunner {
  release(error?: Error | boolean): void;
  on(event: 'notification', listener: (message: { channel: string; payload?: string }) => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
  removeListener(event: 'error', listener: (error: Error) => void): unknown;
}

export interface PgPool {
  query(text: string, values?: unknown[]): Promise<SqlResult>;
  connect(): Promise<PgClient>;
}
