#!/usr/bin/env node
/**
 * Batched vs single handling: one queue, 20,000 small JSON messages sent by the same process,
 * handled one by one (prefetch 100) or by a `batch: { size }` handler (prefetch = size), first send
 * to last handled. Messages per second and CPU per message (process.cpuUsage: this process
 * publishes and consumes), on RabbitMQ and on the in-memory broker.
 *
 *   node bench/batch.js [--reps 3] [--count 20000]
 *
 * Loads the built library (dist/lib, `npm run build`), or the one BENCH_LIB names. Uses
 * BENCH_AMQP_URL or amqp://guest:guest@127.0.0.1:5672; its queues are named nmbench.batch.* and
 * deleted afterwards (with their .dlq).
 */
'use strict';
const { randomBytes } = require('node:crypto');
const { lib, nest, rootRequire, AMQP_URL: AMQP, arg, median, sendAll } = require('./standalone');

const { Injectable, Module, NestFactory } = nest;
const REPS = Number(arg('reps', 3));
const COUNT = Number(arg('count', 20_000));
const MODES = [
  { label: 'single', options: { prefetch: 100 } },
  { label: 'batch 10', options: { batch: { size: 10, timeoutMs: 50 } } },
  { label: 'batch 100', options: { batch: { size: 100, timeoutMs: 50 } } },
];

async function run(uri, mode) {
  const id = randomBytes(3).toString('hex');
  const queue = `nmbench.batch.${id}`;
  let handled = 0;
  let allHandled;
  const done = new Promise((resolve) => (allHandled = resolve));
  class Sink {
    handle(payload) {
      handled += Array.isArray(payload) && mode.options.batch ? payload.length : 1;
      if (handled >= COUNT) allHandled();
    }
  }
  Reflect.decorate(
    [lib.MessageHandler({ queue, retry: false, ...mode.options })],
    Sink.prototype,
    'handle',
    Object.getOwnPropertyDescriptor(Sink.prototype, 'handle'),
  );
  Reflect.decorate([Injectable()], Sink);
  class BenchModule {}
  Reflect.decorate(
    [Module({ imports: [lib.MessagingModule.forRoot({ uri, serviceName: `nmbench-batch-${id}`, persistent: false })], providers: [Sink] })],
    BenchModule,
  );
  const app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
  await app.init();
  const client = app.get(lib.RpcClient);
  try {
    const cpu = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await sendAll(client, queue, COUNT, (i) => ({ i, sku: 'WIDGET', quantity: 2 }));
    await done;
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    const used = process.cpuUsage(cpu);
    return { msgsPerSec: COUNT / seconds, cpuUsPerMsg: (used.user + used.system) / COUNT };
  } finally {
    await app.close();
    if (!uri.startsWith('memory:')) await deleteQueues([queue, `${queue}.dlq`]);
  }
}

async function deleteQueues(queues) {
  const amqp = rootRequire('amqplib');
  const connection = await amqp.connect(AMQP);
  const channel = await connection.createChannel();
  for (const queue of queues) await channel.deleteQueue(queue).catch(() => undefined);
  await connection.close();
}

async function main() {
  console.log(
    `batch vs single: ${COUNT} messages, ${REPS} reps, medians; ${new Date().toISOString()}, load ${require('node:os')
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log('| broker | handling | msgs/s | CPU µs/msg |');
  console.log('|---|---|---:|---:|');
  for (const [broker, uri] of [
    ['RabbitMQ', AMQP],
    ['memory://', 'memory://bench'],
  ]) {
    for (const mode of MODES) {
      const runs = [];
      for (let r = 0; r < REPS; r++) runs.push(await run(uri, mode));
      console.log(
        `| ${broker} | ${mode.label} | ${median(runs.map((x) => x.msgsPerSec)).toFixed(0)} | ${median(runs.map((x) => x.cpuUsPerMsg)).toFixed(1)} |`,
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
