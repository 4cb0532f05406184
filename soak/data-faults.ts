/**
 * The soak's PostgreSQL and Redis side, in the driver: a TCP proxy in front of each (the instances
 * connect through them), the faults done to them — a stall (bytes held both ways, sockets open) or
 * a reset (every connection reset, new ones refused) for a moment, and `pg_terminate_backend` on
 * the instances' own PostgreSQL connections (by application_name) — what the outbox table holds
 * at the end, and the cleanup of the run's tables and keys.
 */
import { Redis } from 'ioredis';
import { Client } from 'pg';
import { deleteKeys } from '../test/persistence/databases';
import { TcpProxy } from '../test/support/tcp-proxy';
import { names } from './protocol';

export const DATA_FAULTS = ['pg-stall', 'pg-reset', 'pg-terminate', 'redis-stall', 'redis-reset'] as const;
export type DataFaultKind = (typeof DATA_FAULTS)[number];

export interface OutboxRow {
  id: string;
  sent: boolean;
}

const PG = { host: '127.0.0.1', port: 5432, user: 'postgres', database: process.env.PGDATABASE ?? 'test' };
const REDIS_PORT = 6379;

export class DataServices {
  private constructor(
    private readonly prefix: string,
    readonly pgProxy: TcpProxy,
    readonly redisProxy: TcpProxy,
    private readonly pg: Client,
    private readonly redis: Redis,
  ) {}

  static async open(prefix: string): Promise<DataServices> {
    const pg = new Client({ ...PG, application_name: 'soak-driver' });
    pg.on('error', () => undefined);
    await pg.connect();
    const redis = new Redis({ host: '127.0.0.1', port: REDIS_PORT, maxRetriesPerRequest: 2 });
    redis.on('error', () => undefined);
    return new DataServices(prefix, await TcpProxy.start(PG.port), await TcpProxy.start(REDIS_PORT), pg, redis);
  }

  /** Injects one fault; resolves with what it did once it is over. */
  async inject(kind: DataFaultKind, pause: (ms: number) => Promise<void>): Promise<string> {
    const ms = 500 + Math.round(Math.random() * 2500);
    switch (kind) {
      case 'pg-stall':
        return this.stall(this.pgProxy, ms, pause);
      case 'redis-stall':
        return this.stall(this.redisProxy, ms, pause);
      case 'pg-reset':
        return this.reset(this.pgProxy, ms, pause);
      case 'redis-reset':
        return this.reset(this.redisProxy, ms, pause);
      case 'pg-terminate':
        return this.terminate();
    }
  }

  /** The outbox table's rows (the ground truth of what committed), or none if no instance created it. */
  async outboxRows(): Promise<OutboxRow[]> {
    const table = names(this.prefix).outboxTable;
    const exists = await this.pg.query('SELECT to_regclass($1) AS t', [table]);
    if (exists.rows[0].t === null) return [];
    const { rows } = await this.pg.query(`SELECT message_id, sent_at IS NOT NULL AS sent FROM "${table}"`);
    return rows.map((r: { message_id: string; sent: boolean }) => ({ id: r.message_id, sent: r.sent }));
  }

  /** Rows the relays have not sent yet (for the drain). */
  async unsentOutboxRows(): Promise<number> {
    return (await this.outboxRows()).filter((r) => !r.sent).length;
  }

  /** Lets everything flow again (before the instances stop, so they can close cleanly). */
  resume(): void {
    this.pgProxy.resume();
    this.redisProxy.resume();
  }

  /** Drops the run's tables and deletes its Redis keys, closes the proxies and the driver's clients. */
  async cleanup(): Promise<void> {
    const n = names(this.prefix);
    for (const table of [n.outboxTable, n.idempotencyTable]) await this.pg.query(`DROP TABLE IF EXISTS "${table}"`).catch(() => undefined);
    await deleteKeys(this.redis, n.redisKeyPrefix).catch(() => undefined);
    await this.pgProxy.close();
    await this.redisProxy.close();
    await this.pg.end().catch(() => undefined);
    this.redis.disconnect();
  }

  private async stall(proxy: TcpProxy, ms: number, pause: (ms: number) => Promise<void>): Promise<string> {
    proxy.stall();
    try {
      await pause(ms);
    } finally {
      proxy.resume();
    }
    return `${proxy.open} connections stalled for ${ms} ms`;
  }

  private async reset(proxy: TcpProxy, ms: number, pause: (ms: number) => Promise<void>): Promise<string> {
    const open = proxy.open;
    proxy.cut();
    try {
      await pause(ms);
    } finally {
      proxy.resume();
    }
    return `${open} connections reset, new ones refused for ${ms} ms`;
  }

  /** Terminates the backends of every instance, or of one. */
  private async terminate(): Promise<string> {
    const { rows } = await this.pg.query('SELECT DISTINCT application_name AS name FROM pg_stat_activity WHERE application_name LIKE $1', [
      `${this.prefix}-%`,
    ]);
    if (rows.length === 0) throw new Error('no soak connection to PostgreSQL to terminate');
    const one = Math.random() < 0.5 ? (rows[Math.floor(Math.random() * rows.length)] as { name: string }).name : undefined;
    const done = await this.pg.query(
      'SELECT count(*)::int AS n FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1 AND pid <> pg_backend_pid()) t',
      [one ?? `${this.prefix}-%`],
    );
    return `${done.rows[0].n} backends of ${one?.slice(this.prefix.length + 1) ?? 'every instance'} terminated`;
  }
}
