#!/usr/bin/env node
/**
 * S1 (one-way throughput, first publish -> last handled) with JSON bodies of 1 KB, 64 KB and 1 MB,
 * compression off and on: messages per second, bytes on the wire per message (the broker's own
 * counters: recv_oct of the publisher connection, send_oct of the consumer connection, read with
 * rabbitmqctl once its statistics have been refreshed) and CPU per message (process.cpuUsage of
 * this process, which both publishes and consumes).
 *
 *   node bench/payloads.js [--algorithm gzip|deflate|br] [--reps 3]
 *
 * Loads the built library (dist/lib, `npm run build`), or the one BENCH_LIB names. Uses
 * BENCH_AMQP_URL or amqp://guest:guest@127.0.0.1:5672; its queues are named nmbench.payloads.* and
 * deleted afterwards. Bodies are realistic JSON (records with numbers, names and tags, about 7:1
 * under gzip), not padding, which would flatter compression.
 */
'use strict';
const { execFileSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const { lib, nest, AMQP_URL: URL, arg, median, sendAll } = require('./standalone');

const { Injectable, Module, NestFactory } = nest;
const ALGORITHM = arg('algorithm', 'gzip');
const REPS = Number(arg('reps', 3));
/** Counts keep each case near 20-50 MB in flight, so the broker (shared) never nears its memory alarm. */
const CASES = [
  { label: '1 KB', bytes: 1024, count: 20_000 },
  { label: '64 KB', bytes: 64 * 1024, count: 1_000 },
  { label: '1 MB', bytes: 1024 * 1024, count: 60 },
];
/** RabbitMQ refreshes connection statistics every 5 s (collect_statistics_interval). */
const STATS_INTERVAL_MS = 5_500;

function body(bytes) {
  const items = [];
  for (let i = 0; JSON.stringify(items).length < bytes; i++) {
    items.push({
      id: i,
      sku: `SKU-${(i * 7919) % 100000}`,
      name: `item ${i}`,
      price: +((i * 7.31) % 100).toFixed(2),
      qty: i % 9,
      tags: ['a', `t${i % 13}`],
      active: i % 3 === 0,
    });
  }
  return { items };
}

function rabbitmqctl(...argv) {
  return execFileSync('rabbitmqctl', ['-q', ...argv], { encoding: 'utf8', timeout: 30_000 });
}

/** recv_oct and send_oct of this run's connections, by role. */
function octets(serviceName) {
  const out = {};
  for (const line of rabbitmqctl('list_connections', 'recv_oct', 'send_oct', 'client_properties').split('\n')) {
    const name = /\{"connection_name","([^"]*)"\}/.exec(line)?.[1];
    if (!name?.startsWith(`${serviceName}:`)) continue;
    const [recv, send] = line.trim().split(/\s+/).map(Number);
    out[name.slice(serviceName.length + 1)] = { recv, send };
  }
  return out;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function runCase(c, compression) {
  const serviceName = `nmbench-payloads-${randomBytes(3).toString('hex')}`;
  const queue = `nmbench.payloads.${serviceName}`;
  let handled = 0;
  let allHandled;
  const done = new Promise((resolve) => (allHandled = resolve));

  // Plain JavaScript: the decorators are applied by hand.
  class Sink {
    handle() {
      if (++handled === c.count) allHandled();
    }
  }
  Reflect.decorate(
    [lib.MessageHandler({ queue, prefetch: 100, retry: false })],
    Sink.prototype,
    'handle',
    Object.getOwnPropertyDescriptor(Sink.prototype, 'handle'),
  );
  Reflect.decorate([Injectable()], Sink);
  const options = { uri: URL, serviceName, persistent: false, ...(compression ? { compression: { algorithm: ALGORITHM } } : {}) };
  class BenchModule {}
  Reflect.decorate([Module({ imports: [lib.MessagingModule.forRoot(options)], providers: [Sink] })], BenchModule);

  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  await app.init();
  const client = app.get(lib.RpcClient);
  const payload = body(c.bytes);
  try {
    await sleep(STATS_INTERVAL_MS);
    const before = octets(serviceName);
    const cpu = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await sendAll(client, queue, c.count, () => payload);
    await done;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const used = process.cpuUsage(cpu);
    await sleep(STATS_INTERVAL_MS);
    const after = octets(serviceName);
    return {
      msgsPerSec: c.count / seconds,
      cpuUsPerMsg: (used.user + used.system) / c.count,
      wireInPerMsg: (after.publisher.recv - before.publisher.recv) / c.count,
      wireOutPerMsg: (after.consumer.send - before.consumer.send) / c.count,
      jsonBytes: JSON.stringify(payload).length,
    };
  } finally {
    await app.close();
    try {
      rabbitmqctl('delete_queue', queue);
      rabbitmqctl('delete_queue', `${queue}.dlq`);
    } catch {
      // already gone
    }
  }
}

async function main() {
  console.log(
    `S1 payloads: ${REPS} reps, medians; compression "on" = ${ALGORITHM} (threshold 1024 bytes); ${new Date().toISOString()}, load ${require('node:os')
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('| body | compression | msgs/s | CPU µs/msg | bytes/msg broker in | bytes/msg broker out |');
  console.log('|---|---|---:|---:|---:|---:|');
  for (const c of CASES) {
    for (const compression of [false, true]) {
      const runs = [];
      for (let r = 0; r < REPS; r++) runs.push(await runCase(c, compression));
      const m = (key) => median(runs.map((run) => run[key]));
      console.log(
        `| ${c.label} (${runs[0].jsonBytes} B) | ${compression ? ALGORITHM : 'off'} | ${m('msgsPerSec').toFixed(0)} | ${m('cpuUsPerMsg').toFixed(0)} | ${m('wireInPerMsg').toFixed(0)} | ${m('wireOutPerMsg').toFixed(0)} |`,
      );
    }
  }
}

main().then(
  () => process.exit(0),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
