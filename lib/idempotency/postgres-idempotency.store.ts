import { createOnce, type PgTable, pgTable } from '../postgres/postgres';
import type { PgPool } from '../interfaces/sql.interface';
import type { IdempotencyClaim, IdempotencyStore } from '../interfaces/idempotency-store.interface';

export interface PostgresIdempotencyStoreOptions {
  /** Default `messaging_idempotency`; `schema.name` works too. */
  table?: string;
  /** Create the table (and its index) on first use if missing. Default true; false when migrations create it. */
  createTable?: boolean;
  /** How often, at most, expired rows are deleted (on the back of a claim). Default 60,000 ms. */
  cleanupIntervalMs?: number;
}

/** The table and index the store needs; also the migration SQL in docs/outbox-and-idempotency.md. */
export function idempotencyTableSql(table: PgTable): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table.sql} (
  key text PRIMARY KEY,
  token text,
  reply bytea,
  expires_at timestamptz NOT NULL
)`,
    `CREATE INDEX IF NOT EXISTS "${table.base}_expires_at" ON ${table.sql} (expires_at)`,
  ];
}

/**
 * Keys in one PostgreSQL table, shared by every instance that uses the same database. A row is
 * a claim while `token` is set, a finished run once it is NULL; either way it is gone for every
 * reader once `expires_at` passed, and deleted now and then.
 */
export class PostgresIdempotencyStore implements IdempotencyStore {
  private readonly table: PgTable;
  private readonly cleanupIntervalMs: number;
  private ready?: Promise<void>;
  private lastCleanup = Date.now();

  constructor(
    private readonly pool: PgPool,
    private readonly options: PostgresIdempotencyStoreOptions = {},
  ) {
    this.table = pgTable(options.table ?? 'messaging_idempotency', 'PostgresIdempotencyStore option "table"');
    this.cleanupIntervalMs = options.cleanupIntervalMs ?? 60_000;
  }

  async claim(key: string, token: string, leaseMs: number): Promise<IdempotencyClaim> {
    await this.created();
    this.cleanUpNowAndThen();
    const t = this.table.sql;
    for (;;) {
      // Takes the key when it is free or its row expired; a concurrent claim on the same key waits
      // for this one's row and then finds it unexpired, so exactly one of them gets a row back.
      const taken = await this.pool.query(
        `INSERT INTO ${t} AS t (key, token, expires_at) VALUES ($1, $2, now() + $3::float8 * interval '1 millisecond')
         ON CONFLICT (key) DO UPDATE SET token = EXCLUDED.token, reply = NULL, expires_at = EXCLUDED.expires_at
         WHERE t.expires_at <= now()`,
        [key, token, leaseMs],
      );
      if (taken.rowCount === 1) return { state: 'claimed' };
      const { rows } = await this.pool.query(`SELECT token, reply FROM ${t} WHERE key = $1 AND expires_at > now()`, [key]);
      if (rows.length === 0) continue; // expired or released in between: claim again
      const [row] = rows as Array<{ token: string | null; reply: Buffer | null }>;
      return row.token === null ? { state: 'done', reply: row.reply ?? undefined } : { state: 'busy' };
    }
  }

  async complete(key: string, ttlMs: number, reply?: Buffer): Promise<void> {
    await this.pool.query(
      `INSERT INTO ${this.table.sql} (key, token, reply, expires_at) VALUES ($1, NULL, $2, now() + $3::float8 * interval '1 millisecond')
       ON CONFLICT (key) DO UPDATE SET token = NULL, reply = EXCLUDED.reply, expires_at = EXCLUDED.expires_at`,
      [key, reply ?? null, ttlMs],
    );
  }

  async release(key: string, token: string): Promise<void> {
    await this.pool.query(`DELETE FROM ${this.table.sql} WHERE key = $1 AND token = $2`, [key, token]);
  }

  async renew(key: string, token: string, leaseMs: number): Promise<boolean> {
    const renewed = await this.pool.query(
      `UPDATE ${this.table.sql} SET expires_at = now() + $3::float8 * interval '1 millisecond' WHERE key = $1 AND token = $2 AND expires_at > now()`,
      [key, token, leaseMs],
    );
    return renewed.rowCount === 1;
  }

  /** Once per store; a failure is not kept, so the next claim tries again. */
  private created(): Promise<void> {
    if (this.options.createTable === false) return Promise.resolve();
    return (this.ready ??= createOnce(this.pool, this.table, idempotencyTableSql(this.table)).catch((error: unknown) => {
      this.ready = undefined;
      throw error;
    }));
  }

  /**
   * Expired rows read as absent and are overwritten by the next claim of their key, so deleting
   * them is only housekeeping: done in the background, a failure left to the next time.
   */
  private cleanUpNowAndThen(): void {
    const now = Date.now();
    if (now - this.lastCleanup < this.cleanupIntervalMs) return;
    this.lastCleanup = now;
    this.pool.query(`DELETE FROM ${this.table.sql} WHERE expires_at < now()`).catch(() => undefined);
  }
}
