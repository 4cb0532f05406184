/**
 * S8 cost growth: throughput, latency and peak RSS of ours and raw amqplib as (a) handlers per app,
 * (b) body size, (c) RPC requests in flight and (d) competing consumer instances grow.
 */
import { runQueues } from '../broker';
import type { Handler, Msg } from '../impl/types';
import { CPU, RunContext, closeBounded, entries, fmtN, now, peakRssMB, publishAll, rpcThroughput, setupOptions } from '../scenarios';
import { cpuMeter } from '../cpu';
import { competingConsumers } from './instances';
import { DimensionDef, PointScenario, metric } from './group';

const MAX_REPS = 3;
const PREFETCH = 50;
/** Unconfirmed bytes the producer may have out at once: keeps the broker far from its memory alarm. */
const MAX_UNCONFIRMED_BYTES = 50 * 2 ** 20;
const KB = 1024;
const MB = 1024 * KB;

const RSS = metric('peakRssMB', 'peak RSS MB', 'lower');
const MSGS = metric('msgsPerSec', 'msgs/s', 'higher');
/** Where the time went (cpu.ts): a throughput ratio that moves with N may only be the bottleneck moving between Node and the broker. */
const [NODE_CPU, BROKER_CPU] = CPU;

export const S8_DIMENSIONS: Record<'a' | 'b' | 'c' | 'd', DimensionDef> = {
  a: {
    id: 'a',
    title: 'handlers in one app',
    axis: 'handlers',
    metrics: [MSGS, RSS, NODE_CPU, BROKER_CPU],
    plot: ['msgsPerSec', 'peakRssMB'],
    describe: (q) =>
      `${fmtN(count.a(q))} one-way msgs of ~1 KB spread evenly over N queues, one handler each (ours: N providers with one @MessageHandler; raw: N consumers, each on its own channel), prefetch ${PREFETCH} each`,
  },
  b: {
    id: 'b',
    title: 'body size',
    axis: 'body',
    metrics: [MSGS, metric('mbPerSec', 'MB/s', 'higher'), RSS, NODE_CPU, BROKER_CPU],
    plot: ['mbPerSec', 'peakRssMB'],
    describe: (q) =>
      `one-way, one queue, prefetch ${PREFETCH}; ${SIZES.map((s) => `${fmtN(count.b(q, s.bytes))} × ${s.label}`).join(', ')}; at most ${MAX_UNCONFIRMED_BYTES / MB} MB (and 1,000 msgs) unconfirmed`,
  },
  c: {
    id: 'c',
    title: 'RPC requests in flight',
    axis: 'in flight',
    metrics: [
      metric('callsPerSec', 'calls/s', 'higher'),
      metric('p99Ms', 'p99 ms', 'lower'),
      RSS,
      metric('nodeCpuUs', 'Node CPU µs/call', 'lower'),
      BROKER_CPU,
    ],
    plot: ['callsPerSec', 'p99Ms', 'peakRssMB'],
    describe: (q) =>
      `as S3 (prefetch ${PREFETCH}, ~1 KB requests) with ${IN_FLIGHT.map((n) => `${fmtN(count.c(q, n))} calls at ${fmtN(n)} in flight`).join(', ')}`,
  },
  d: {
    id: 'd',
    title: 'competing consumer instances',
    axis: 'instances',
    metrics: [
      MSGS,
      metric('peakRssMB', 'peak RSS MB per instance', 'lower'),
      metric('handledMinShare', 'least busy instance / even share', 'info'),
    ],
    plot: ['msgsPerSec', 'peakRssMB'],
    describe: (q) =>
      `${fmtN(count.d(q))} one-way msgs of ~1 KB from one producer process into one queue, consumed by 1 or 3 separate processes (prefetch ${PREFETCH} each); msgs/s from the first publish to the last handled in any instance; peak RSS of the largest instance`,
  },
};

const SIZES = [
  { bytes: 100, label: '100 B' },
  { bytes: 10 * KB, label: '10 KB' },
  { bytes: MB, label: '1 MB' },
];
const IN_FLIGHT = [100, 1_000, 10_000];

const count = {
  a: (q: boolean) => (q ? 2_000 : 20_000),
  /** ~2 s of raw amqplib per point on 2 cores */
  b: (q: boolean, bytes: number) => (bytes >= MB ? (q ? 30 : 150) : bytes >= 10 * KB ? (q ? 1_000 : 5_000) : q ? 2_000 : 10_000),
  c: (q: boolean, inFlight: number) => Math.max(inFlight * 2, q ? 1_000 : inFlight >= 1_000 ? 10_000 : 5_000),
  d: (q: boolean) => (q ? 2_000 : 10_000),
};

/** A message whose JSON is `bytes` long: {"id":<7 digits>,"pad":"x…"}. */
function bodyOf(bytes: number): (id: number) => Msg {
  const pad = 'x'.repeat(Math.max(0, bytes - '{"id":1234567,"pad":""}'.length));
  return (id) => ({ id, pad });
}

/** (a), (b): `total` one-way messages spread round-robin over `queues`; first publish -> last handled. */
async function oneWaySpread(ctx: RunContext, total: number, queues: string[], bytes: number): Promise<Record<string, number>> {
  let handled = 0;
  let last = 0;
  let done!: () => void;
  const allHandled = new Promise<void>((r) => (done = r));
  const handler: Handler = () => {
    if (++handled === total) {
      last = now();
      done();
    }
  };
  const body = bodyOf(bytes);
  const wireBytes = Buffer.byteLength(JSON.stringify(body(0)));
  try {
    await ctx.adapter.setup({ ...setupOptions(ctx, { prefetch: PREFETCH, rpc: false, handler }), queues });
    for (const queue of queues) await ctx.broker.waitForConsumer(queue);
    const window = Math.max(1, Math.min(1_000, Math.floor(MAX_UNCONFIRMED_BYTES / wireBytes)));
    const cpu = cpuMeter();
    const t0 = now();
    await publishAll(ctx.adapter, total, window, body, (id) => queues[id % queues.length]);
    await allHandled;
    const seconds = (last - t0) / 1000;
    const result = { msgsPerSec: total / seconds, mbPerSec: (total * wireBytes) / MB / seconds, peakRssMB: peakRssMB(), ...cpu(total) };
    await closeBounded(ctx.adapter);
    return result;
  } finally {
    if (queues.length > 1) await ctx.broker.deleteQueues(queues.flatMap(runQueues));
  }
}

const ENTRIES = entries(['raw', 'ours']);
const timeout = (full: number) => (q: boolean) => (q ? Math.min(full, 45_000) : full);

function point(
  dimension: 'a' | 'b' | 'c' | 'd',
  x: number,
  xLabel: string,
  run: PointScenario['run'],
  timeoutMs = timeout(60_000),
): PointScenario {
  const d = S8_DIMENSIONS[dimension];
  return {
    id: `S8${dimension}-${xLabel.replace(/[ ,]/g, '')}`,
    title: `${d.title}: ${xLabel}`,
    group: 'S8',
    dimension,
    x,
    xLabel,
    maxReps: MAX_REPS,
    entries: ENTRIES,
    metrics: d.metrics,
    describe: d.describe,
    timeoutMs,
    run,
  };
}

const HANDLERS = [1, 10, 100];
const INSTANCES = [1, 3];

export const S8: PointScenario[] = [
  ...HANDLERS.map((n) =>
    point('a', n, String(n), (ctx) =>
      oneWaySpread(ctx, count.a(ctx.quick), n === 1 ? [ctx.queue] : Array.from({ length: n }, (_, i) => `${ctx.queue}.h${i}`), KB),
    ),
  ),
  ...SIZES.map((s) => point('b', s.bytes, s.label, (ctx) => oneWaySpread(ctx, count.b(ctx.quick, s.bytes), [ctx.queue], s.bytes))),
  ...IN_FLIGHT.map((n) =>
    point('c', n, fmtN(n), async (ctx) => {
      const r = await rpcThroughput(ctx, count.c(ctx.quick, n), n);
      return {
        callsPerSec: r.callsPerSec,
        p99Ms: r.p99Us / 1000,
        peakRssMB: peakRssMB(),
        nodeCpuUs: r.nodeCpuUs,
        ...(r.brokerCpuUs === undefined ? {} : { brokerCpuUs: r.brokerCpuUs }),
      };
    }),
  ),
  ...INSTANCES.map((n) =>
    point(
      'd',
      n,
      String(n),
      (ctx) => competingConsumers(ctx, { instances: n, count: count.d(ctx.quick), prefetch: PREFETCH }),
      timeout(90_000),
    ),
  ),
];
