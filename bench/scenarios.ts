/**
 * The scenarios of BENCHMARKS.md. Each runs inside one fresh child process against one adapter and
 * returns its metrics. Sizes: `full` is the spec; `quick` is a smoke run of about a minute in all.
 */
import { Adapter, Handler, Msg, SetupOptions } from './impl/types';
import { Broker } from './broker';
import { cpuMeter } from './cpu';

export type Better = 'higher' | 'lower' | 'zero' | 'info';
export interface MetricDef {
  key: string;
  label: string;
  better: Better;
}

/** One column entry of a scenario: an implementation, optionally a variant of it. */
export interface Entry {
  id: string; // unique within the scenario, e.g. "nest:default"
  impl: 'raw' | 'ours' | 'golevelup' | 'nest';
  noDelay: boolean;
  variant: SetupOptions['variant'];
  row: string; // '' for the scenario's main row, or the variant row's label
}

export interface RunContext {
  adapter: Adapter;
  broker: Broker;
  url: string;
  queue: string;
  entry: Entry;
  quick: boolean;
  unhandled: () => number;
}

export interface ScenarioDef {
  id: string;
  title: string;
  entries: Entry[];
  metrics: MetricDef[];
  /** where the raw-amqplib reference of the ratios comes from, when not this scenario's `raw` */
  ratioBase?: { scenario: string; entry: string };
  describe(quick: boolean): string;
  timeoutMs(quick: boolean): number;
  /** Sets the adapter up, measures, and closes it (S5 measures the close itself). */
  run(ctx: RunContext): Promise<Record<string, number>>;
}

// ---------------------------------------------------------------------------------------------
const PAD = 'x'.repeat(1005); // {"id":12345,"pad":"xxx…"} is ~1 KB
export const makeMsg = (id: number): Msg => ({ id, pad: PAD });

export const now = () => Number(process.hrtime.bigint()) / 1e6; // ms, sub-µs resolution
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const peakRssMB = () => process.resourceUsage().maxRSS / 1024;

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

export function entries(ids: string[]): Entry[] {
  return ids.map((id) => {
    const [impl, mod] = id.split(':') as [Entry['impl'], string | undefined];
    const variant = mod === 'track' || mod === 'scoped' || mod === 'wire' ? mod : 'plain';
    const row = ROWS[mod ?? ''] ?? '';
    return { id, impl, noDelay: mod !== 'default', variant, row };
  });
}

const ROWS: Record<string, string> = {
  track: 'handler reads TrackContext',
  scoped: 'request-scoped handler class',
  wire: 'bound: raw amqplib + the per-message work ours must do',
};

const ALL = entries(['raw', 'ours', 'golevelup', 'nest']);
/** S1-S4 also measure raw amqplib doing by hand the per-message work ours must do (impl/raw.ts). */
const WITH_BOUND = entries(['raw', 'raw:wire', 'ours', 'golevelup', 'nest']);

export function setupOptions(
  ctx: RunContext,
  o: { prefetch: number; rpc: boolean; handler: Handler; persistent?: boolean; queueType?: SetupOptions['queueType'] },
): SetupOptions {
  return {
    url: ctx.url,
    queue: ctx.queue,
    prefetch: o.prefetch,
    rpc: o.rpc,
    handler: o.handler,
    persistent: o.persistent ?? false,
    noDelay: ctx.entry.noDelay,
    variant: ctx.entry.variant,
    ...(o.queueType ? { queueType: o.queueType } : {}),
  };
}

export async function closeBounded(adapter: Adapter, ms = 20_000): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    adapter.close(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`close() took over ${ms} ms`)), ms))),
  ]).finally(() => clearTimeout(timer));
}

/** Publishes ids [0, count) keeping at most `window` unconfirmed (S8 picks each one's body and queue). */
export async function publishAll(
  adapter: Adapter,
  count: number,
  window = 1000,
  payloadOf: (id: number) => Msg = makeMsg,
  queueOf?: (id: number) => string,
): Promise<void> {
  let next = 0;
  let inFlight = 0;
  await new Promise<void>((resolve, reject) => {
    const pump = () => {
      while (inFlight < window && next < count) {
        inFlight++;
        const id = next++;
        adapter.publishOne(payloadOf(id), queueOf?.(id)).then(() => {
          inFlight--;
          if (next === count && inFlight === 0) resolve();
          else pump();
        }, reject);
      }
    };
    pump();
  });
}

/** S1, S4, S6, S7, S10a: publish `count` one-way messages, measure first publish -> last handled. */
async function oneWay(
  ctx: RunContext,
  o: { count: number; prefetch: number; persistent: boolean; handlerDelayMs?: number; queueType?: SetupOptions['queueType'] },
): Promise<Record<string, number>> {
  let handled = 0;
  let last = 0;
  let done!: () => void;
  const allHandled = new Promise<void>((r) => (done = r));
  const count = () => {
    if (++handled === o.count) {
      last = now();
      done();
    }
  };
  const delay = o.handlerDelayMs;
  const handler: Handler = delay ? async () => (await sleep(delay), count()) : () => count();

  await ctx.adapter.setup(
    setupOptions(ctx, { prefetch: o.prefetch, rpc: false, handler, persistent: o.persistent, queueType: o.queueType }),
  );
  await ctx.broker.waitForConsumer(ctx.queue);
  const rssBeforeMB = process.memoryUsage().rss / 2 ** 20;
  const cpu = cpuMeter();
  const t0 = now();
  await publishAll(ctx.adapter, o.count);
  await allHandled;
  const peak = peakRssMB();
  const result = { msgsPerSec: o.count / ((last - t0) / 1000), peakRssMB: peak, rssGrowthMB: peak - rssBeforeMB, ...cpu(o.count) };
  await closeBounded(ctx.adapter);
  return result;
}

const rpcHandler: Handler = (m) => ({ id: m.id, ok: true });

async function checkedRequest(adapter: Adapter, id: number): Promise<void> {
  const reply = (await adapter.request(makeMsg(id))) as { id?: number } | undefined;
  if (reply?.id !== id) throw new Error(`wrong RPC reply for ${id}: ${JSON.stringify(reply)?.slice(0, 200)}`);
}

/** S2: sequential request/reply latency. */
async function rpcLatency(ctx: RunContext, warmup: number, calls: number): Promise<Record<string, number>> {
  await ctx.adapter.setup(setupOptions(ctx, { prefetch: 50, rpc: true, handler: rpcHandler }));
  await ctx.broker.waitForConsumer(ctx.queue);
  for (let i = 0; i < warmup; i++) await checkedRequest(ctx.adapter, i);
  const lat: number[] = [];
  for (let i = 0; i < calls; i++) {
    const t = now();
    await checkedRequest(ctx.adapter, warmup + i);
    lat.push(now() - t);
  }
  lat.sort((a, b) => a - b);
  await closeBounded(ctx.adapter);
  return { p50Us: percentile(lat, 50) * 1000, p99Us: percentile(lat, 99) * 1000 };
}

/** S3, S10b: `calls` requests with `concurrency` in flight (on a queue of `queueType`). */
export async function rpcThroughput(
  ctx: RunContext,
  calls: number,
  concurrency: number,
  queueType?: SetupOptions['queueType'],
): Promise<Record<string, number>> {
  await ctx.adapter.setup(setupOptions(ctx, { prefetch: 50, rpc: true, handler: rpcHandler, queueType }));
  await ctx.broker.waitForConsumer(ctx.queue);
  const lat: number[] = [];
  let issued = 0;
  const cpu = cpuMeter();
  const t0 = now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (issued < calls) {
        const id = issued++;
        const t = now();
        await checkedRequest(ctx.adapter, id);
        lat.push(now() - t);
      }
    }),
  );
  const elapsed = now() - t0;
  lat.sort((a, b) => a - b);
  await closeBounded(ctx.adapter);
  return { callsPerSec: calls / (elapsed / 1000), p99Us: percentile(lat, 99) * 1000, ...cpu(calls) };
}

/**
 * S5: 500 messages, handlers of 100-500 ms, prefetch 20, close() right after the 40th completion.
 * Afterwards the queue is drained by the harness to find what was lost or will be redelivered.
 */
async function shutdown(ctx: RunContext): Promise<Record<string, number>> {
  const total = 500;
  const closeAfter = 40;
  const starts = new Map<number, number>();
  const completed = new Set<number>();
  const running = new Set<{ id: number; end: number }>();
  let completions = 0;
  let duplicates = 0;
  let trigger!: () => void;
  const closeNow = new Promise<void>((r) => (trigger = r));

  const handler: Handler = async (m) => {
    const n = (starts.get(m.id) ?? 0) + 1;
    starts.set(m.id, n);
    if (n > 1) duplicates++;
    const ms = 100 + ((m.id * 7919) % 401); // deterministic 100-500 ms
    const token = { id: m.id, end: now() + ms };
    running.add(token);
    await sleep(ms);
    running.delete(token);
    completed.add(m.id);
    if (++completions === closeAfter) trigger();
  };

  await ctx.adapter.setup(setupOptions(ctx, { prefetch: 20, rpc: false, handler }));
  await ctx.broker.waitForConsumer(ctx.queue);
  await publishAll(ctx.adapter, total);
  await closeNow;

  const t0 = now();
  const slowestInFlightMs = Math.max(0, ...[...running].map((r) => r.end - t0));
  await closeBounded(ctx.adapter, 30_000);
  const closeMs = now() - t0;
  const runningAtClose = running.size;

  // let handlers that outlived close() finish, then see what the broker still holds
  for (let i = 0; i < 60 && running.size > 0; i++) await sleep(10);
  await sleep(100);
  const left = await ctx.broker.drain(ctx.queue);
  const inQueue = new Set(left);
  let lost = 0;
  for (let id = 0; id < total; id++) if (!completed.has(id) && !inQueue.has(id)) lost++;
  for (const id of inQueue) if (completed.has(id)) duplicates++; // finished, yet will be delivered again

  return {
    runningAtClose,
    lost,
    duplicates,
    unhandled: ctx.unhandled(),
    closeMs,
    slowestInFlightMs,
  };
}

// ---------------------------------------------------------------------------------------------
const THROUGHPUT: MetricDef[] = [
  { key: 'msgsPerSec', label: 'msgs/s', better: 'higher' },
  { key: 'peakRssMB', label: 'peak RSS MB', better: 'lower' },
  { key: 'rssGrowthMB', label: 'RSS growth MB (peak − after setup)', better: 'lower' },
];
/** Where the time went (cpu.ts): shown, not targeted. */
export const CPU: MetricDef[] = [
  { key: 'nodeCpuUs', label: 'Node CPU µs/msg (producer + consumer)', better: 'lower' },
  { key: 'brokerCpuUs', label: 'broker CPU µs/msg', better: 'lower' },
];
const LATENCY: MetricDef[] = [
  { key: 'p50Us', label: 'p50 µs', better: 'lower' },
  { key: 'p99Us', label: 'p99 µs', better: 'lower' },
];
const RPC_THROUGHPUT: MetricDef[] = [
  { key: 'callsPerSec', label: 'calls/s', better: 'higher' },
  { key: 'p99Us', label: 'p99 µs', better: 'lower' },
  { key: 'nodeCpuUs', label: 'Node CPU µs/call (client + server)', better: 'lower' },
  CPU[1],
];
export const fmtN = (n: number) => n.toLocaleString('en-US');

const size = {
  S1: (q: boolean) => (q ? 5_000 : 20_000),
  S2: (q: boolean) => (q ? [50, 500] : [200, 2_000]),
  S2d: (q: boolean) => (q ? [5, 40] : [10, 100]),
  S3: (q: boolean) => (q ? 3_000 : 10_000),
  S4: (q: boolean) => (q ? 1_000 : 2_000),
};
const timeout = (full: number) => (q: boolean) => (q ? Math.min(full, 45_000) : full);

export const SCENARIOS: ScenarioDef[] = [
  {
    id: 'S1',
    title: 'one-way throughput',
    entries: WITH_BOUND,
    metrics: [...THROUGHPUT, ...CPU],
    describe: (q) => `${fmtN(size.S1(q))} msgs, ≤1,000 unconfirmed, no-op handler, prefetch 50, transient`,
    timeoutMs: timeout(90_000),
    run: (ctx) => oneWay(ctx, { count: size.S1(ctx.quick), prefetch: 50, persistent: false }),
  },
  {
    id: 'S2',
    title: 'RPC latency',
    entries: WITH_BOUND,
    metrics: LATENCY,
    describe: (q) => `${fmtN(size.S2(q)[0])} warm-up + ${fmtN(size.S2(q)[1])} sequential calls; TCP_NODELAY on (ours: its defaults)`,
    timeoutMs: timeout(90_000),
    run: (ctx) => rpcLatency(ctx, size.S2(ctx.quick)[0], size.S2(ctx.quick)[1]),
  },
  {
    id: 'S2d',
    title: 'RPC latency, default sockets',
    entries: entries(['raw:default', 'golevelup:default', 'nest:default']),
    metrics: LATENCY,
    ratioBase: { scenario: 'S2', entry: 'raw' },
    describe: (q) =>
      `S2 with the libraries' default socket (Nagle on), ${fmtN(size.S2d(q)[0])} + ${fmtN(size.S2d(q)[1])} calls (fewer: each waits for a delayed ACK); ratios to raw S2`,
    timeoutMs: timeout(90_000),
    run: (ctx) => rpcLatency(ctx, size.S2d(ctx.quick)[0], size.S2d(ctx.quick)[1]),
  },
  {
    id: 'S3',
    title: 'RPC throughput',
    entries: WITH_BOUND,
    metrics: RPC_THROUGHPUT,
    describe: (q) => `${fmtN(size.S3(q))} calls, 100 in flight, prefetch 50`,
    timeoutMs: timeout(90_000),
    run: (ctx) => rpcThroughput(ctx, size.S3(ctx.quick), 100),
  },
  {
    id: 'S4',
    title: 'concurrency',
    entries: WITH_BOUND,
    metrics: [{ key: 'msgsPerSec', label: 'msgs/s (ideal 5,000)', better: 'higher' }, ...CPU],
    describe: (q) => `${fmtN(size.S4(q))} msgs, handler awaits 20 ms, prefetch 100`,
    timeoutMs: timeout(60_000),
    run: (ctx) => oneWay(ctx, { count: size.S4(ctx.quick), prefetch: 100, persistent: false, handlerDelayMs: 20 }),
  },
  {
    id: 'S5',
    title: 'shutdown',
    entries: ALL,
    metrics: [
      { key: 'runningAtClose', label: 'running at close() return', better: 'zero' },
      { key: 'lost', label: 'lost', better: 'zero' },
      { key: 'duplicates', label: 'duplicates', better: 'zero' },
      { key: 'unhandled', label: 'unhandled rejections', better: 'zero' },
      { key: 'closeMs', label: 'close() ms', better: 'lower' },
      { key: 'slowestInFlightMs', label: 'slowest in-flight handler left ms', better: 'info' },
    ],
    describe: () => '500 msgs, handler awaits 100-500 ms, prefetch 20, close() after the 40th completion',
    timeoutMs: timeout(60_000),
    run: shutdown,
  },
  {
    id: 'S6',
    title: 'scope cost (ours)',
    entries: entries(['raw', 'ours', 'ours:track', 'ours:scoped']),
    metrics: THROUGHPUT.slice(0, 1),
    describe: (q) => `S1 (${fmtN(size.S1(q))} msgs) with a handler reading TrackContext, and with a request-scoped handler class`,
    timeoutMs: timeout(90_000),
    run: (ctx) => oneWay(ctx, { count: size.S1(ctx.quick), prefetch: 50, persistent: false }),
  },
  {
    id: 'S7',
    title: 'persistence',
    entries: ALL,
    metrics: THROUGHPUT.slice(0, 2),
    describe: (q) => `S1 (${fmtN(size.S1(q))} msgs) with persistent messages for every impl`,
    timeoutMs: timeout(120_000),
    run: (ctx) => oneWay(ctx, { count: size.S1(ctx.quick), prefetch: 50, persistent: true }),
  },
  // S10: S1 and S3 on a quorum queue (Raft log on disk, every message kept whatever its delivery mode)
  {
    id: 'S10a',
    title: 'one-way throughput, quorum queue',
    entries: WITH_BOUND,
    metrics: [...THROUGHPUT, ...CPU],
    describe: (q) =>
      `S1 (${fmtN(size.S1(q))} msgs, ≤1,000 unconfirmed, prefetch 50, published transient) on a quorum queue: raw, golevelup and Nest RMQ declare it with \`x-queue-type: quorum\`, ours with \`queueType: 'quorum'\``,
    timeoutMs: timeout(120_000),
    run: (ctx) => oneWay(ctx, { count: size.S1(ctx.quick), prefetch: 50, persistent: false, queueType: 'quorum' }),
  },
  {
    id: 'S10b',
    title: 'RPC throughput, quorum queue',
    entries: WITH_BOUND,
    metrics: RPC_THROUGHPUT,
    describe: (q) =>
      `S3 (${fmtN(size.S3(q))} calls, 100 in flight, prefetch 50) with the request queue a quorum queue (replies: direct reply-to)`,
    timeoutMs: timeout(120_000),
    run: (ctx) => rpcThroughput(ctx, size.S3(ctx.quick), 100, 'quorum'),
  },
];
