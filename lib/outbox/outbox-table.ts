import type { PublishProperties } from '../transport/outgoing';
import { decodeProperties, encodeProperties } from './outbox-properties';
import type { PgTable } from '../postgres/postgres';
import type { SqlExecutor, SqlRunner } from '../interfaces/sql.interface';

/** A message as the outbox keeps it: already encoded, with everything the relay publishes. */
export interface OutboxRow {
  id: string;
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: PublishProperties;
}

/** The table and indexes of the outbox; also the migration SQL in docs/outbox-and-idempotency.md. */
export function outboxTableSql(table: PgTable): string[] {
  return [
    `CREATE TABLE IF NOT EXISTS ${table.sql} (
  id bigserial PRIMARY KEY,
  message_id text NOT NULL,
  exchange text NOT NULL,
  routing_key text NOT NULL,
  content bytea NOT NULL,
  properties jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  available_at timestamptz NOT NULL DEFAULT now(),
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  sent_at timestamptz
)`,
    `CREATE INDEX IF NOT EXISTS "${table.base}_unsent" ON ${table.sql} (id) WHERE sent_at IS NULL`,
    `CREATE INDEX IF NOT EXISTS "${table.base}_sent_at" ON ${table.sql} (sent_at) WHERE sent_at IS NOT NULL`,
  ];
}

/** A row that was not published, and why. */
export interface RowFailure {
  id: string;
  error: string;
}

/** The statements of the outbox, on one table; its NOTIFY channel is the table's name. */
export class OutboxTable {
  readonly channel: string;

  constructor(private readonly table: PgTable) {
    this.channel = table.base;
  }

  /**
   * Writes a row and notifies the relays, in one statement of the caller's transaction:
   * PostgreSQL delivers the notification at COMMIT, and drops it with the row on ROLLBACK.
   */
  async insert(client: SqlExecutor, row: Omit<OutboxRow, 'id'>): Promise<void> {
    await client.query(
      `WITH written AS (
         INSERT INTO ${this.table.sql} (message_id, exchange, routing_key, content, properties) VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id
       ) SELECT pg_notify($6, '') FROM written`,
      [row.properties.messageId, row.exchange, row.routingKey, row.content, JSON.stringify(encodeProperties(row.properties)), this.channel],
    );
  }

  /**
   * Locks up to `limit` committed, unsent rows that are due, oldest first, for the caller's
   * transaction. Rows another relay holds are skipped, not waited for: relays share the work.
   */
  async take(client: SqlRunner, limit: number): Promise<OutboxRow[]> {
    const { rows } = await client.query(
      `SELECT id, exchange, routing_key, content, properties FROM ${this.table.sql}
       WHERE sent_at IS NULL AND available_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`,
      [limit],
    );
    return rows.map(
      (row: {
        id: string;
        exchange: string;
        routing_key: string;
        content: Buffer;
        properties: Parameters<typeof decodeProperties>[0];
      }) => ({
        id: row.id,
        exchange: row.exchange,
        routingKey: row.routing_key,
        content: row.content,
        properties: decodeProperties(row.properties),
      }),
    );
  }

  async markSent(client: SqlRunner, ids: string[]): Promise<void> {
    await client.query(`UPDATE ${this.table.sql} SET sent_at = now() WHERE id = ANY($1::bigint[])`, [ids]);
  }

  /** Counts a failed try and makes each row due again after a back-off that doubles with its tries. */
  async markFailed(client: SqlRunner, failures: RowFailure[], initialDelayMs: number, maxDelayMs: number): Promise<void> {
    await client.query(
      `UPDATE ${this.table.sql} AS t SET attempts = t.attempts + 1, last_error = f.error,
         available_at = now() + least($4::float8, $3::float8 * power(2, least(t.attempts, 30))) * interval '1 millisecond'
       FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE t.id = f.id`,
      [failures.map((f) => f.id), failures.map((f) => f.error), initialDelayMs, maxDelayMs],
    );
  }

  /**
   * Counts a failed try and takes the rows out of the relay's way for good: due at 'infinity',
   * `last_error` says why. No schema change: a parked row is an unsent row that never comes due,
   * and `UPDATE ... SET available_at = now()` sends it again.
   */
  async park(client: SqlRunner, failures: RowFailure[]): Promise<void> {
    await client.query(
      `UPDATE ${this.table.sql} AS t SET attempts = t.attempts + 1, last_error = f.error, available_at = 'infinity'
       FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE t.id = f.id`,
      [failures.map((f) => f.id), failures.map((f) => f.error)],
    );
  }

  /** Deletes the rows sent more than `retentionMs` ago. */
  async clean(client: SqlRunner, retentionMs: number): Promise<number> {
    const { rowCount } = await client.query(`DELETE FROM ${this.table.sql} WHERE sent_at < now() - $1::float8 * interval '1 millisecond'`, [
      retentionMs,
    ]);
    return rowCount ?? 0;
  }
}
