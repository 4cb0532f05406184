/**
 * S11 outbox relay: rows per second from the COMMIT of outbox rows to "published, confirmed and
 * marked sent", for nestjs-messaging's PostgreSQL outbox (`forRoot({ outbox })`, its relay in each
 * app instance) against a bound written by hand with raw amqplib and pg: per batch BEGIN, the
 * library's own SELECT … FOR UPDATE SKIP LOCKED of the same table, every row published on a
 * ConfirmChannel, the confirms awaited, the rows marked sent, COMMIT. S11a with one relay, S11b
 * with two (two app instances in the child process, each with its own connections and pool,
 * sharing the table through SKIP LOCKED; the bound: two such loops likewise).
 *
 * The same rows for both: written by the library's `Outbox.send` (1 KB JSON, persistent, to the
 * run's queue) with no relay running, then moved to a staging table. The relays start on the empty
 * outbox table (idle: nothing is due) and the clock starts with one transaction that copies every
 * row back and notifies (what a COMMIT of outbox rows does), so neither app start-up nor the writes
 * are timed. The run checks at the end that no row is left unsent and that the queue holds exactly
 * one message per row. Tables are `nmbench_<run>_…` (PostgreSQL at BENCH_DATABASE_URL, default
 * postgres://postgres@127.0.0.1:5432/test), dropped afterwards; the runner drops any a killed child left.
 * This folds in bench/outbox-relay.js (kept for the figure docs/performance.md quotes).
 */
import * as amqp from 'amqplib';
import { createRequire } from 'module';
import * as path from 'path';
import { cpuMeter } from './cpu';
import { loadNest } from './impl/ours';
import { MetricDef, RunContext, ScenarioDef, entries, fmtN, now, sleep } from './scenarios';

const ROOT = path.resolve(__dirname, '..', '..'); // bench/dist -> repository root
const rootRequire = createRequire(path.join(ROOT, 'package.json'));

export const DATABASE_URL = () => process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';
/** The library's default `outbox.batchSize`, given to both explicitly. */
const BATCH = 500;
const WRITE_TRANSACTION = 1_000;
/** A relay that has not moved for this long has stalled: the run fails with where it stopped. */
const STALL_MS = 15_000;
const rowsOf = (quick: boolean) => (quick ? 5_000 : 20_000);

/** A body of about 1 KB of realistic JSON (as bench/outbox-relay.js). */
const BODY = {
  orderId: 'ord-0',
  lines: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${i * 7919}`, name: `item ${i}`, qty: i % 5, price: +(i * 3.7).toFixed(2) })),
};

/** The little of `pg` used here (from the repository root, as the library gets it). */
interface PgResult {
  rows: any[];
  rowCount: number | null;
}
interface PgClient {
  query(sql: string, values?: unknown[]): Promise<PgResult>;
  release(error?: Error | boolean): void;
}
interface PgPool {
  query(sql: string, values?: unknown[]): Promise<PgResult>;
  connect(): Promise<PgClient>;
  end(): Promise<void>;
  on(event: 'error', listener: (error: Error) => void): unknown;
}
function newPool(max = 4): PgPool {
  const pool: PgPool = new (rootRequire('pg').Pool)({ connectionString: DATABASE_URL(), max });
  pool.on('error', () => undefined); // an idle client's error must not kill the child
  return pool;
}

/** `nmbench.<run>.S11a.ours.1` -> `nmbench_<run>_s11a_ours_1`: the run's tables share the run's prefix. */
export const tableOf = (name: string) => name.replace(/[^A-Za-z0-9]+/g, '_').toLowerCase();

/** Drops every table a run left (a child killed at its timeout cannot); best effort. */
export async function dropRunTables(runPrefix: string): Promise<number> {
  const prefix = `${tableOf(runPrefix)}_`;
  const pool = newPool(1);
  try {
    const { rows } = await pool.query(`SELECT tablename FROM pg_tables WHERE schemaname = current_schema() AND left(tablename, $1) = $2`, [
      prefix.length,
      prefix,
    ]);
    for (const { tablename } of rows) await pool.query(`DROP TABLE IF EXISTS "${tablename}"`);
    return rows.length;
  } catch {
    return 0;
  } finally {
    await pool.end().catch(() => undefined);
  }
}

interface Relays {
  /** rows published, confirmed, marked sent and committed, over all relays */
  relayed(): number;
  /** the bound: starts its loops (ours' relays are already waiting for the notification) */
  go(): Promise<void>;
  close(): Promise<void>;
}

/** ours: `relays` app instances with `forRoot({ outbox: { pool, table, relay: true } })`. */
async function oursRelays(ctx: RunContext, table: string, relays: number): Promise<Relays> {
  const apps = await Promise.all(Array.from({ length: relays }, () => outboxApp(ctx, newPool(), table, true)));
  return {
    relayed: () => apps.reduce((sum, a) => sum + a.outbox.relayed, 0),
    go: () => Promise.resolve(),
    close: async () => {
      for (const a of apps) await a.close();
    },
  };
}

interface OutboxApp {
  outbox: { relayed: number; send(client: PgClient, queue: string, payload: unknown): Promise<string> };
  close(): Promise<void>;
}

async function outboxApp(ctx: RunContext, pool: PgPool, table: string, relay: boolean): Promise<OutboxApp> {
  const { common, core } = loadNest();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const lib = require(ROOT);
  @common.Module({
    imports: [lib.MessagingModule.forRoot({ uri: ctx.url, serviceName: ctx.queue, outbox: { pool, table, relay, batchSize: BATCH } })],
  })
  class OutboxBenchModule {}
  const app = await core.NestFactory.createApplicationContext(OutboxBenchModule, { logger: ['error', 'warn'] });
  await app.init();
  return {
    outbox: app.get(lib.Outbox),
    close: async () => {
      await app.close();
      await pool.end();
    },
  };
}

/** The bound: `relays` hand-written loops, each with its own amqplib connection and pool. */
async function boundRelays(ctx: RunContext, table: string, relays: number): Promise<Relays> {
  const loops = await Promise.all(
    Array.from({ length: relays }, async () => {
      const conn = await amqp.connect(ctx.url, { noDelay: true });
      const ch = await conn.createConfirmChannel();
      return { conn, ch, pool: newPool(), relayed: 0 };
    }),
  );
  const take = `SELECT id, exchange, routing_key, content, properties FROM "${table}"
     WHERE sent_at IS NULL AND available_at <= now() ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED`;
  const markSent = `UPDATE "${table}" SET sent_at = now() WHERE id = ANY($1::bigint[])`;

  async function run(loop: (typeof loops)[number]): Promise<void> {
    for (;;) {
      const client = await loop.pool.connect();
      let taken: number;
      try {
        await client.query('BEGIN');
        const { rows } = await client.query(take, [BATCH]);
        taken = rows.length;
        // The row's properties are what Outbox.send stored (plain JSON for these rows: message id,
        // headers, persistent, mandatory, content type): amqplib takes them as publish options.
        await Promise.all(
          rows.map(
            (row) =>
              new Promise<void>((resolve, reject) =>
                loop.ch.publish(row.exchange, row.routing_key, row.content, row.properties, (err) => (err ? reject(err) : resolve())),
              ),
          ),
        );
        if (taken > 0) await client.query(markSent, [rows.map((row) => row.id)]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
      loop.relayed += taken;
      if (taken < BATCH) return; // nothing more due (what another relay holds, it sends)
    }
  }

  let running: Promise<void[]> | undefined;
  return {
    relayed: () => loops.reduce((sum, l) => sum + l.relayed, 0),
    go: () => {
      running = Promise.all(loops.map(run));
      return running.then(() => undefined);
    },
    close: async () => {
      await running?.catch(() => undefined);
      for (const l of loops) {
        await l.ch.close();
        await l.conn.close();
        await l.pool.end();
      }
    },
  };
}

async function outboxRelay(ctx: RunContext, relays: number): Promise<Record<string, number>> {
  const rows = rowsOf(ctx.quick);
  const table = tableOf(ctx.queue);
  const staged = `${table}_staged`;
  const admin = newPool(2);
  const conn = await amqp.connect(ctx.url, { noDelay: true });
  const ch = await conn.createChannel();
  let relaying: Relays | undefined;
  try {
    await ch.assertQueue(ctx.queue, { durable: true });

    // 1. The rows, by the library (it creates the table), no relay running; then moved aside.
    const writer = await outboxApp(ctx, newPool(), table, false);
    let writeSeconds: number;
    try {
      const w0 = now();
      for (let written = 0; written < rows; written += WRITE_TRANSACTION) {
        const client = await admin.connect();
        try {
          await client.query('BEGIN');
          for (let i = written; i < Math.min(rows, written + WRITE_TRANSACTION); i++)
            await writer.outbox.send(client, ctx.queue, { ...BODY, orderId: `ord-${i}` });
          await client.query('COMMIT');
        } finally {
          client.release();
        }
      }
      writeSeconds = (now() - w0) / 1000;
    } finally {
      await writer.close();
    }
    await admin.query(`CREATE TABLE "${staged}" AS SELECT * FROM "${table}" ORDER BY id`);
    await admin.query(`TRUNCATE "${table}"`);

    // 2. The relays, idle on the empty table.
    relaying = await (ctx.entry.impl === 'ours' ? oursRelays(ctx, table, relays) : boundRelays(ctx, table, relays));

    // 3. One COMMIT makes every row due and wakes the relays (the NOTIFY Outbox.send makes).
    const client = await admin.connect();
    let t0: number;
    let cpu: ReturnType<typeof cpuMeter>;
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO "${table}" SELECT * FROM "${staged}" ORDER BY id`);
      await client.query('SELECT pg_notify($1, $2)', [table, '']);
      cpu = cpuMeter();
      t0 = now();
      await client.query('COMMIT');
    } finally {
      client.release();
    }
    let failed: unknown;
    relaying.go().catch((error) => (failed = error));

    // 4. Until every row is relayed (counted in this process once its batch committed).
    let last = 0;
    let moved = now();
    while (relaying.relayed() < rows) {
      if (failed) throw failed;
      const n = relaying.relayed();
      if (n !== last) [last, moved] = [n, now()];
      else if (now() - moved > STALL_MS) throw new Error(`the relay stalled at ${n} of ${rows} rows`);
      await sleep(5);
    }
    const seconds = (now() - t0) / 1000;
    const result = { rowsPerSec: rows / seconds, ...cpu(rows), writesPerSec: rows / writeSeconds };

    const { rows: unsent } = await admin.query(`SELECT count(*)::int AS n FROM "${table}" WHERE sent_at IS NULL`);
    if (unsent[0].n !== 0) throw new Error(`${unsent[0].n} rows left unsent`);
    const { messageCount } = await ch.checkQueue(ctx.queue);
    if (messageCount !== rows) throw new Error(`the queue holds ${messageCount} messages for ${rows} rows`);
    return result;
  } finally {
    await relaying?.close();
    await admin.query(`DROP TABLE IF EXISTS "${table}", "${staged}"`).catch(() => undefined);
    await admin.end();
    await conn.close().catch(() => undefined);
  }
}

const METRICS: MetricDef[] = [
  { key: 'rowsPerSec', label: 'rows/s, COMMIT → published, confirmed, marked sent', better: 'higher' },
  { key: 'nodeCpuUs', label: 'Node CPU µs/row (the relays)', better: 'lower' },
  { key: 'brokerCpuUs', label: 'broker CPU µs/row', better: 'lower' },
  {
    key: 'writesPerSec',
    label: `rows/s written by Outbox.send (${fmtN(WRITE_TRANSACTION)} per transaction; untimed setup)`,
    better: 'info',
  },
];

const describe = (relays: number) => (q: boolean) =>
  `${fmtN(rowsOf(q))} rows of ~1 KB JSON (persistent, to one queue) written by Outbox.send, then committed in one transaction while ${relays === 1 ? 'the relay waits' : `${relays} relays (app instances) wait`}; batchSize ${BATCH}. **The raw amqplib column is the bound**: the same rows relayed by hand (per batch: BEGIN, the library's SELECT … FOR UPDATE SKIP LOCKED, publish on a ConfirmChannel, await the confirms, mark sent, COMMIT${relays === 1 ? '' : `; ${relays} such loops, each with its own connections`})`;

const scenario = (id: string, relays: number): ScenarioDef => ({
  id,
  title: `outbox relay, ${relays === 1 ? 'one relay' : `${relays} relays (two app instances)`}; raw amqplib = the hand-written bound`,
  entries: entries(['raw', 'ours']),
  metrics: METRICS,
  describe: describe(relays),
  timeoutMs: (q) => (q ? 45_000 : 120_000),
  // The child's adapter is not used: the relays are the apps here.
  run: (ctx) => outboxRelay(ctx, relays),
});

export const S11: ScenarioDef[] = [scenario('S11a', 1), scenario('S11b', 2)];
