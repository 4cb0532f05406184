/**
 * S9 idle memory: RSS, V8 heap and memory outside the heap of a process that is set up and idle
 * (after garbage collection), with the connections, channels and queues the broker counts for it.
 * Points: a bare amqplib connection + channel (raw) and a bare Nest application context (ours, no
 * messaging); then 1 and 100 handlers (ours: MessagingModule + N providers; raw: N consumers on a
 * channel each). The per-handler cost is (100 − 1) / 99, in the report.
 */
import * as amqp from 'amqplib';
import * as v8 from 'v8';
import * as vm from 'vm';
import { runQueues } from '../broker';
import { loadNest } from '../impl/ours';
import { RunContext, closeBounded, entries, setupOptions, sleep } from '../scenarios';
import { median } from '../stats';
import { ctlPath, runCtl } from '../rabbitmqctl';
import { DimensionDef, PointScenario, metric } from './group';

const MAX_REPS = 3;
const SETTLE_MS = 1_000;
const SAMPLES = 5;
const MB = 2 ** 20;

const metrics = (better: 'lower' | 'info') => [
  metric('idleRssMB', 'idle RSS MB', better),
  metric('heapUsedMB', 'V8 heap used MB', better),
  metric('externalMB', 'external (buffers etc.) MB', better),
  metric('connections', 'connections', 'info'),
  metric('channels', 'channels', 'info'),
  metric('queues', 'queues', 'info'),
];

export const MEMORY_DIMENSION: DimensionDef = {
  id: 'memory',
  title: 'idle memory',
  axis: 'handlers',
  metrics: metrics('lower'),
  plot: [],
  describe: () =>
    `each point set up, then idle: ${SETTLE_MS} ms settle, then ${SAMPLES} samples of process.memoryUsage() 100 ms apart, each after a full GC; medians. ` +
    'Counts from rabbitmqctl (connections and channels by connection name, queues by name); every child also holds the harness’s own amqplib connection (the same in every point)',
};

/** The children run without --expose-gc, as S1–S7 need them: turned on here, for this process only. */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc');
}

async function idleMemory(): Promise<Record<string, number>> {
  const gc = gcFunction();
  await sleep(SETTLE_MS);
  const samples: NodeJS.MemoryUsage[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    gc();
    await sleep(100);
    samples.push(process.memoryUsage());
  }
  const mb = (key: keyof NodeJS.MemoryUsage) => median(samples.map((s) => s[key])) / MB;
  return { idleRssMB: mb('rss'), heapUsedMB: mb('heapUsed'), externalMB: mb('external') };
}

function rabbitmqctl(args: string[]): string {
  const r = runCtl(['-q', ...args], 30_000);
  if (r.status !== 0) throw new Error(`${ctlPath()} ${args.join(' ')} failed: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** What the broker holds for this run: connections named `name` or `name:<role>`, their channels, queues under `name`. */
function brokerCounts(name: string): Record<string, number> {
  const ours = (n: unknown) => typeof n === 'string' && (n === name || n.startsWith(`${name}:`) || n.startsWith(`${name}.`));
  const conns = (
    JSON.parse(rabbitmqctl(['list_connections', 'client_properties', 'channels', '--formatter', 'json'])) as Array<{
      client_properties: unknown;
      channels: number;
    }>
  ).filter((c) => ours(connectionName(c.client_properties)));
  const queues = rabbitmqctl(['list_queues', 'name', '--no-table-headers'])
    .split('\n')
    .map((q) => q.trim())
    .filter(ours);
  return { connections: conns.length, channels: conns.reduce((sum, c) => sum + c.channels, 0), queues: queues.length };
}

/** rabbitmqctl's JSON gives client properties as [name, type, value] triples. */
function connectionName(props: unknown): string | undefined {
  const found = Array.isArray(props) ? props.find((p) => Array.isArray(p) && p[0] === 'connection_name') : undefined;
  return found?.[2];
}

async function measure(ctx: RunContext): Promise<Record<string, number>> {
  return { ...(await idleMemory()), ...brokerCounts(ctx.queue) };
}

/** raw: an amqplib connection with one channel; ours: a Nest application context, no messaging. */
async function bare(ctx: RunContext): Promise<Record<string, number>> {
  if (ctx.entry.impl === 'raw') {
    const conn = await amqp.connect(ctx.url, { noDelay: true, clientProperties: { connection_name: ctx.queue } });
    await conn.createChannel();
    const result = await measure(ctx);
    await conn.close();
    return result;
  }
  const { common, core } = loadNest();
  @common.Module({})
  class EmptyModule {}
  const app = await core.NestFactory.createApplicationContext(EmptyModule, { logger: false });
  await app.init();
  const result = await measure(ctx);
  await app.close();
  return result;
}

async function withHandlers(ctx: RunContext, n: number): Promise<Record<string, number>> {
  const queues = n === 1 ? [ctx.queue] : Array.from({ length: n }, (_, i) => `${ctx.queue}.h${i}`);
  try {
    const handler = () => undefined;
    await ctx.adapter.setup({ ...setupOptions(ctx, { prefetch: 50, rpc: false, handler }), queues, connectionName: ctx.queue });
    for (const queue of queues) await ctx.broker.waitForConsumer(queue);
    const result = await measure(ctx);
    await closeBounded(ctx.adapter);
    return result;
  } finally {
    if (n > 1) await ctx.broker.deleteQueues(queues.flatMap(runQueues));
  }
}

const ENTRIES = entries(['raw', 'ours']);

function point(x: number, xLabel: string, title: string, better: 'lower' | 'info', run: PointScenario['run']): PointScenario {
  return {
    id: `S9-${xLabel}`,
    title,
    group: 'S9',
    dimension: 'memory',
    x,
    xLabel,
    maxReps: MAX_REPS,
    entries: ENTRIES,
    metrics: metrics(better),
    describe: MEMORY_DIMENSION.describe,
    timeoutMs: () => 60_000,
    run,
  };
}

export const S9: PointScenario[] = [
  // raw and ours are different things here (amqplib vs Nest): no ratio
  point(0, 'bare', 'bare (raw: amqplib connection + channel; ours: Nest application context, no messaging)', 'info', bare),
  point(1, '1', '1 handler', 'lower', (ctx) => withHandlers(ctx, 1)),
  point(100, '100', '100 handlers', 'lower', (ctx) => withHandlers(ctx, 100)),
];
