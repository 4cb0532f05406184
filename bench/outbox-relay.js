#!/usr/bin/env node
/**
 * Outbox relay throughput: rows per second from "committed in messaging_outbox" to "published
 * with a confirm and marked sent", with one relay and with two (two app instances sharing the
 * table through FOR UPDATE SKIP LOCKED); and, for scale, how fast `Outbox.send` writes rows in
 * transactions of 1,000.
 *
 *   node bench/outbox-relay.js [--rows 20000] [--batch 500] [--reps 3]
 *
 * The rows (1 KB JSON bodies, persistent messages to one queue) are written while no relay runs;
 * then the relays start and the clock runs until every row is marked sent (the queue holds them
 * all by then: a row is marked only after the broker's confirm). Loads the built library
 * (dist/lib, `npm run build`), or the one BENCH_LIB names. Uses BENCH_AMQP_URL or
 * amqp://guest:guest@127.0.0.1:5672 and BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test;
 * its table (nmbench_outbox_*) and queue (nmbench.outbox.*) are dropped afterwards.
 */
'use strict';
const path = require('node:path');
const { randomBytes } = require('node:crypto');

const ROOT = path.resolve(__dirname, '..');
const rootRequire = require('node:module').createRequire(path.join(ROOT, 'package.json'));
rootRequire('reflect-metadata');
const { Module } = rootRequire('@nestjs/common');
const { NestFactory } = rootRequire('@nestjs/core');
const { Pool } = rootRequire('pg');
const amqp = rootRequire('amqplib');
const lib = require(process.env.BENCH_LIB ? path.resolve(process.env.BENCH_LIB) : ROOT);

const AMQP_URL = process.env.BENCH_AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
const DATABASE_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const args = process.argv.slice(2);
const arg = (name, fallback) => (args.includes(`--${name}`) ? Number(args[args.indexOf(`--${name}`) + 1]) : fallback);
const ROWS = arg('rows', 20_000);
const BATCH = arg('batch', 500);
const REPS = arg('reps', 3);
const WRITE_TRANSACTION = 1_000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** A body of about 1 KB of realistic JSON. */
const BODY = {
  orderId: 'ord-0',
  lines: Array.from({ length: 12 }, (_, i) => ({ sku: `SKU-${i * 7919}`, name: `item ${i}`, qty: i % 5, price: +(i * 3.7).toFixed(2) })),
};

async function app(pool, table, relay) {
  // Plain JavaScript: the decorator is applied by hand.
  class BenchModule {}
  Module({
    imports: [
      lib.MessagingModule.forRoot({ uri: AMQP_URL, serviceName: 'nmbench-outbox', outbox: { pool, table, relay, batchSize: BATCH } }),
    ],
  })(BenchModule);
  const instance = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
  await instance.init();
  return instance;
}

async function runCase(relays) {
  const suffix = randomBytes(4).toString('hex');
  const table = `nmbench_outbox_${suffix}`;
  const queue = `nmbench.outbox.${suffix}`;
  const connection = await amqp.connect(AMQP_URL);
  const channel = await connection.createChannel();
  await channel.assertQueue(queue, { durable: true });
  const pools = [];
  const newPool = () => {
    const pool = new Pool({ connectionString: DATABASE_URL, max: 4 });
    pools.push(pool);
    return pool;
  };
  const apps = [];
  try {
    // Rows first, with no relay running: the clock below measures the relays alone.
    const writes = newPool();
    const writer = await app(writes, table, false);
    apps.push(writer);
    const outbox = writer.get(lib.Outbox);
    const w0 = process.hrtime.bigint();
    for (let written = 0; written < ROWS; written += WRITE_TRANSACTION) {
      const client = await writes.connect();
      try {
        await client.query('BEGIN');
        for (let i = written; i < Math.min(ROWS, written + WRITE_TRANSACTION); i++)
          await outbox.send(client, queue, { ...BODY, orderId: `ord-${i}` });
        await client.query('COMMIT');
      } finally {
        client.release();
      }
    }
    const writeSeconds = Number(process.hrtime.bigint() - w0) / 1e9;

    const t0 = process.hrtime.bigint();
    for (let i = 0; i < relays; i++) apps.push(await app(newPool(), table, true));
    for (;;) {
      const { rows } = await writes.query(`SELECT count(*)::int AS unsent FROM ${table} WHERE sent_at IS NULL`);
      if (rows[0].unsent === 0) break;
      await sleep(20);
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const { messageCount } = await channel.checkQueue(queue);
    if (messageCount !== ROWS) throw new Error(`the queue holds ${messageCount} messages, not ${ROWS}`);
    return { rowsPerSec: ROWS / seconds, writesPerSec: ROWS / writeSeconds };
  } finally {
    for (const instance of apps) await instance.close();
    await pools[0].query(`DROP TABLE IF EXISTS ${table}`);
    for (const pool of pools) await pool.end();
    await channel.deleteQueue(queue);
    await connection.close();
  }
}

async function main() {
  console.log(
    `Outbox relay: ${ROWS} rows of ~1 KB, batchSize ${BATCH}, ${REPS} reps, medians; ${new Date().toISOString()}, load ${require('node:os')
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('| relays | rows/s relayed (published, confirmed, marked sent) | rows/s written by Outbox.send |');
  console.log('|---:|---:|---:|');
  for (const relays of [1, 2]) {
    const runs = [];
    for (let r = 0; r < REPS; r++) runs.push(await runCase(relays));
    console.log(
      `| ${relays} | ${median(runs.map((run) => run.rowsPerSec)).toFixed(0)} | ${median(runs.map((run) => run.writesPerSec)).toFixed(0)} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
