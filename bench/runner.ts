/**
 * Runs the plan: every (scenario, repetition, impl) in a fresh, time-bounded child process,
 * impls interleaved; then prints and writes the report. Invoked by run.js.
 */
import { fork } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { Broker, runQueues } from './broker';
import type { ChildResult, ChildSpec } from './child';
import { type NodeBinary, resolveNode } from './node-binary';
import { type BrokerVm, findBrokerVm, runCtl } from './rabbitmqctl';
import { S11, dropRunTables } from './s11-outbox';
import { SCENARIOS, ScenarioDef } from './scenarios';
import { POINT_SCENARIOS } from './growth';
import { isPoint, repsOf } from './growth/group';
import { writeS8Plot } from './growth/plot';
import { RunRecord, fmt, renderMarkdown, summarize } from './stats';
import { companionRuns } from './companions';

const BENCH = path.resolve(__dirname, '..');
const ROOT = path.resolve(BENCH, '..');
const RESULTS = path.join(BENCH, 'results');

interface Args {
  quick: boolean;
  only?: string[];
  impl?: string[];
  reps: number;
  url: string;
  timeoutS?: number;
  node?: string;
  rabbitmqctl?: string;
  databaseUrl?: string;
  /** Also keep this run as bench/RESULTS.<record>.md, a companion run RESULTS.md links to. */
  record?: string;
}

const USAGE = `usage: npm run bench -- [--quick] [--only S1,S2,...] [--impl raw,ours,golevelup,nest] [--reps N] [--url amqp://...]
                        [--node 24|<path>] [--rabbitmqctl <path>] [--database-url postgres://...] [--record <name>]
  --quick   fewer messages and 1 repetition (about a minute)
  --only    scenarios (S2 also selects S2d, the default-socket variant; S10 both quorum-queue scenarios, S11 both
            outbox-relay ones; S8 all cost-growth points, S8a one dimension of them; S9 the idle-memory points)
  --impl    implementations (raw is the reference of the ratios)
  --reps    repetitions (default 5, quick 1)
  --url     broker (default $BENCH_AMQP_URL or amqp://guest:guest@127.0.0.1:5672)
  --node    the Node every child runs on: a major version (24: the nest12 leg's, 22: installed once from npm
            into node_modules/.cache/nestjs-messaging-bench-node/22) or a binary's path; default the runner's
  --rabbitmqctl  the broker's rabbitmqctl (its VM's CPU, the final sweep, S9's counts); default the first of
            $RABBITMQCTL, rabbitmqctl, test/rabbitmq4/rabbitmqctl whose node listens on the URL's port
  --database-url  PostgreSQL for S11 (default $BENCH_DATABASE_URL or postgres://postgres@127.0.0.1:5432/test)
  --timeout seconds after which a child is killed and its run reported failed (default per scenario, 45-120)
  --record  also keep the report as bench/RESULTS.<name>.md (letters, digits, dashes), a companion run that
            bench/RESULTS.md links to: e.g. --node 24 --record node24, or S1-S4 on another broker`;

function parseArgs(argv: string[]): Args {
  const args: Args = { quick: false, reps: 0, url: process.env.BENCH_AMQP_URL || 'amqp://guest:guest@127.0.0.1:5672' };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].split('=', 2);
    const value = () => inline ?? argv[++i] ?? '';
    const list = () =>
      value()
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
    switch (flag) {
      case '--quick':
        args.quick = true;
        break;
      case '--only':
        args.only = list().map((x) => x.toUpperCase().replace(/D$/, 'd'));
        break;
      case '--impl':
        args.impl = list().map((x) => ({ 'nestjs-messaging': 'ours', 'nest-rmq': 'nest', amqplib: 'raw' })[x] ?? x);
        break;
      case '--reps':
        args.reps = Number(value());
        break;
      case '--url':
        args.url = value();
        break;
      case '--timeout':
        args.timeoutS = Number(value());
        break;
      case '--node':
        args.node = value();
        break;
      case '--rabbitmqctl': {
        const ctl = value();
        args.rabbitmqctl = ctl.includes('/') ? path.resolve(ctl) : ctl;
        break;
      }
      case '--database-url':
        args.databaseUrl = value();
        break;
      case '--record':
        args.record = value();
        if (!/^[a-z0-9-]+$/i.test(args.record))
          throw new Error(`--record takes a name of letters, digits and dashes (got "${args.record}")`);
        break;
      case '-h':
      case '--help':
        console.log(USAGE);
        process.exit(0);
      default:
        console.error(`unknown option ${argv[i]}\n${USAGE}`);
        process.exit(2);
    }
  }
  if (!args.reps) args.reps = args.quick ? 1 : 5;
  if (!Number.isInteger(args.reps) || args.reps < 1) throw new Error('--reps must be a positive integer');
  for (const i of args.impl ?? []) if (!['raw', 'ours', 'golevelup', 'nest'].includes(i)) throw new Error(`unknown impl ${i}`);
  return args;
}

function selectScenarios(args: Args): ScenarioDef[] {
  const wanted = (id: string) =>
    !args.only ||
    args.only.some(
      (o) => id.toUpperCase() === o.toUpperCase() || (id.toUpperCase().startsWith(o.toUpperCase()) && !/\d/.test(id[o.length])),
    );
  return [...SCENARIOS, ...S11, ...POINT_SCENARIOS]
    .filter((s) => wanted(s.id))
    .map((s) => ({ ...s, entries: s.entries.filter((e) => !args.impl || args.impl.includes(e.impl)) }))
    .filter((s) => s.entries.length > 0);
}

const tail = (s: string, n = 1500) => (s.length > n ? s.slice(-n) : s);

/** The Node binary the children run on (--node); the runner's own unless given. */
let childNode: NodeBinary = { path: process.execPath, version: process.version };

function runChild(spec: ChildSpec, timeoutMs: number, log: fs.WriteStream): Promise<{ result?: ChildResult; error?: string }> {
  return new Promise((resolve) => {
    const child = fork(path.join(__dirname, 'child.js'), [JSON.stringify(spec)], {
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
      execPath: childNode.path,
    });
    current = child;
    let output = '';
    let result: ChildResult | undefined;
    let timedOut = false;
    const onData = (d: Buffer) => {
      output = tail(output + d.toString(), 4000);
      log.write(d);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.on('message', (m) => (result = m as ChildResult));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      current = undefined;
      if (result) return resolve({ result });
      const why = timedOut ? `timed out after ${timeoutMs / 1000} s (killed)` : `exited with ${signal ?? code} and no result`;
      const out = tail(output, 600).replace(/\s+/g, ' ').trim();
      resolve({ error: out ? `${why}; last output: ${out}` : why });
    });
  });
}

let current: ReturnType<typeof fork> | undefined;

function versions(): Record<string, string> {
  const v = (file: string) => {
    try {
      return JSON.parse(fs.readFileSync(file, 'utf8')).version as string;
    } catch {
      return '?';
    }
  };
  return {
    'nestjs-messaging': v(path.join(ROOT, 'package.json')),
    amqplib: v(path.join(BENCH, 'node_modules/amqplib/package.json')),
    golevelup: v(path.join(BENCH, 'node_modules/@golevelup/nestjs-rabbitmq/package.json')),
    nest: v(path.join(BENCH, 'node_modules/@nestjs/microservices/package.json')),
  };
}

/** Deletes whatever a run left behind under its prefix (best effort; needs the broker's rabbitmqctl). */
async function sweep(broker: Broker, prefix: string, ctl: string | undefined): Promise<number> {
  if (!ctl) return 0;
  const list = (what: string) => {
    const r = runCtl(['-q', what, 'name', '--no-table-headers'], 60_000, ctl);
    if (r.status !== 0) return undefined;
    return r.stdout
      .split('\n')
      .map((x) => x.trim())
      .filter((x) => x.startsWith(prefix));
  };
  const queues = list('list_queues');
  const exchanges = list('list_exchanges');
  if (queues) await broker.deleteQueues(queues);
  if (exchanges) await broker.deleteExchanges(exchanges);
  return (queues?.length ?? 0) + (exchanges?.length ?? 0);
}

/** A path inside the repository relative to it; anything else as it is. */
const shortPath = (p: string) => (path.isAbsolute(p) && !path.relative(ROOT, p).startsWith('..') ? path.relative(ROOT, p) : p);

/** The report's line on the broker: its version (from the connection), where, and how its CPU was read. */
function brokerLine(server: string, url: string, vm: BrokerVm): string {
  const where = url.replace(/\/\/[^@]*@/, '//');
  const how = vm.pid
    ? `broker CPU from its VM, OS pid ${vm.pid}${vm.ctl ? ` (found by ${shortPath(vm.ctl)})` : ' (BENCH_BROKER_PID)'}`
    : `broker CPU not measured: ${vm.note ?? 'no pid'}`;
  return `${server} at ${where}${vm.status ? ` (rabbitmqctl status: ${vm.status})` : ''}; ${how}`;
}

function summaryOf(s: ScenarioDef, r: RunRecord): string {
  if (!r.ok) return `FAILED: ${(r.error ?? '').split('\n')[0].slice(0, 160)}`;
  return s.metrics.map((m) => `${fmt(r.metrics![m.key])} ${m.label}`).join(', ');
}

export async function main(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const scenarios = selectScenarios(args);
  if (scenarios.length === 0) throw new Error('nothing selected');
  const oursUnavailable = process.env.BENCH_OURS_UNAVAILABLE;

  childNode = resolveNode(args.node, ROOT);
  if (args.databaseUrl) process.env.BENCH_DATABASE_URL = args.databaseUrl; // inherited by every child (S11)

  let broker: Broker;
  try {
    broker = await Broker.connect(args.url);
  } catch (err) {
    console.error(`cannot connect to ${args.url.replace(/\/\/[^@]*@/, '//***@')}: ${(err as Error).message}`);
    return 2;
  }
  const server = broker.serverVersion;
  const vm = findBrokerVm(args.url, ROOT, args.rabbitmqctl);
  // inherited by every child: cpu.ts reads the VM's CPU time, S9 counts with the same rabbitmqctl
  if (vm.pid) process.env.BENCH_BROKER_PID = vm.pid;
  if (vm.ctl) process.env.BENCH_RABBITMQCTL = vm.ctl;
  const nodeLine = `${childNode.version}${childNode.path === process.execPath ? '' : ` (${shortPath(childNode.path)}); the runner ${process.version}`}`;
  const brokerInfo = brokerLine(server, args.url, vm);
  const prefix = `nmbench.${Date.now().toString(36)}`;
  fs.mkdirSync(path.join(RESULTS, 'logs'), { recursive: true });
  const logFile = path.join(RESULTS, 'logs', `${prefix}.log`);
  const log = fs.createWriteStream(logFile);

  const plan: Array<{ s: ScenarioDef; entry: string; rep: number }> = [];
  for (const s of scenarios)
    for (let rep = 1; rep <= repsOf(s, args.reps); rep++) for (const e of s.entries) plan.push({ s, entry: e.id, rep });

  // Ctrl-C: stop the current child, clean up, report what ran; a second Ctrl-C exits at once.
  let interrupted = false;
  process.on('SIGINT', () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    console.error('\ninterrupted: cleaning up (Ctrl-C again to exit at once)');
    current?.kill('SIGKILL');
  });

  const tty = process.stdout.isTTY;
  const started = Date.now();
  const capped = scenarios.find((s) => repsOf(s, args.reps) < args.reps);
  console.log(
    `bench: ${plan.length} runs (${scenarios.map((s) => s.id).join(' ')}; ${args.reps} rep(s)${capped ? `, S8/S9 points ${repsOf(capped, args.reps)}` : ''}${args.quick ? ', quick' : ''}) on Node ${nodeLine}; broker ${brokerInfo}; log ${path.relative(ROOT, logFile)}`,
  );
  // One unrecorded run first, so that the first measured run does not pay for a cold broker and disk cache.
  if (tty) process.stdout.write('warming up …');
  const warm = `${prefix}.warmup`;
  await runChild({ scenario: 'S1', entry: 'raw', url: args.url, queue: warm, quick: true }, 45_000, log);
  await broker.deleteQueues(runQueues(warm));

  const runs: RunRecord[] = [];
  for (const [i, p] of plan.entries()) {
    if (interrupted) break;
    const queue = `${prefix}.${p.s.id}.${p.entry.replace(/:/g, '-')}.${p.rep}`;
    const label = `[${String(i + 1).padStart(String(plan.length).length)}/${plan.length}] ${p.s.id} rep ${p.rep}/${repsOf(p.s, args.reps)} ${p.entry}`;
    if (tty) process.stdout.write(`\r\x1b[K${label} …`);
    log.write(`\n===== ${label} (${queue})\n`);
    const t0 = Date.now();
    let record: RunRecord;
    if (p.entry.startsWith('ours') && oursUnavailable) {
      record = { scenario: p.s.id, entry: p.entry, rep: p.rep, ok: false, error: oursUnavailable, seconds: 0 };
    } else {
      const spec: ChildSpec = { scenario: p.s.id, entry: p.entry, url: args.url, queue, quick: args.quick };
      const { result, error } = await runChild(spec, args.timeoutS ? args.timeoutS * 1000 : p.s.timeoutMs(args.quick), log);
      record = {
        scenario: p.s.id,
        entry: p.entry,
        rep: p.rep,
        ok: !!result?.ok,
        metrics: result?.metrics,
        error: result?.error ?? (interrupted ? 'interrupted' : error),
        unhandled: result?.unhandled,
        uncaught: result?.uncaught,
        seconds: (Date.now() - t0) / 1000,
        node: result?.node,
      };
      if (result && result.node !== childNode.version) {
        record.ok = false;
        record.error = `the child ran on Node ${result.node}, not ${childNode.version}`;
      }
      await broker.deleteQueues(runQueues(queue));
    }
    runs.push(record);
    log.write(`----- ${JSON.stringify(record)}\n`);
    const line = `${label}: ${summaryOf(p.s, record)} (${record.seconds.toFixed(1)} s)`;
    if (tty) process.stdout.write(`\r\x1b[K${line}${record.ok ? '' : '\n'}`);
    else console.log(line);
  }
  if (tty) process.stdout.write('\r\x1b[K');

  const swept = await sweep(broker, prefix, vm.ctl);
  await broker.close();
  const dropped = scenarios.some((s) => S11.some((x) => x.id === s.id)) ? await dropRunTables(prefix) : 0;
  log.end();

  const cpus = os.cpus();
  const meta = {
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
    machine: `${cpus.length} cores (${cpus[0]?.model?.trim() ?? '?'}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.type()} ${os.release()}, Node ${childNode.version}, ${server}`,
    node: nodeLine,
    broker: brokerInfo,
    command:
      process.env.npm_lifecycle_event === 'bench'
        ? `npm run bench${argv.length ? ` -- ${argv.join(' ')}` : ''}`
        : `node bench/run.js ${argv.join(' ')}`.trim(),
    reps: args.reps,
    quick: args.quick,
    versions: versions(),
  };
  const full = !args.quick && !args.only && !args.impl && !interrupted;
  // The S8 plot: results/s8.png for latest.md, and s8-growth.png next to RESULTS.md for the record.
  const points = scenarios.filter(isPoint);
  const plotted = points.some((p) => p.group === 'S8');
  const plotError = plotted
    ? writeS8Plot(points, summarize(scenarios, runs), `${meta.date} · ${meta.command} · ${meta.machine}`, [
        path.join(RESULTS, 's8.png'),
        ...(full && !args.record ? [path.join(BENCH, 's8-growth.png')] : []),
        ...(args.record ? [path.join(BENCH, `s8-growth.${args.record}.png`)] : []),
      ])
    : undefined;
  const plot = (file: string) => (!plotted ? undefined : plotError ? { error: plotError } : { file });
  const footer = `\n_${runs.length}${runs.length < plan.length ? ` of ${plan.length}` : ''} runs in ${((Date.now() - started) / 1000).toFixed(0)} s._\n`;
  const md = renderMarkdown(scenarios, runs, meta, plot('s8.png')) + footer;
  console.log('\n' + md);
  const json = {
    ...meta,
    nodeBinary: { children: childNode, runner: { path: process.execPath, version: process.version } },
    brokerVm: { server, ctl: vm.ctl, pid: vm.pid, status: vm.status, note: vm.note },
    args,
    runs,
    summary: summarize(scenarios, runs),
  };
  fs.writeFileSync(path.join(RESULTS, 'latest.json'), JSON.stringify(json, null, 2));
  fs.writeFileSync(path.join(RESULTS, 'latest.md'), md);
  const written = ['bench/results/latest.json', 'bench/results/latest.md'];
  if (plotted && !plotError) written.push('bench/results/s8.png');
  if (args.record && !args.quick && !interrupted) {
    const file = `RESULTS.${args.record}.md`;
    fs.writeFileSync(path.join(BENCH, file), renderMarkdown(scenarios, runs, meta, plot(`s8-growth.${args.record}.png`)) + footer);
    written.push(`bench/${file}`, ...(plotted && !plotError ? [`bench/s8-growth.${args.record}.png`] : []));
  }
  // A full run on another Node is a companion (--record), never the record of the machine's Node.
  if (full && !args.record) {
    const report = renderMarkdown(scenarios, runs, meta, plot('s8-growth.png')) + companionRuns(BENCH) + footer;
    fs.writeFileSync(path.join(BENCH, 'RESULTS.md'), report);
    written.push('bench/RESULTS.md', ...(plotted && !plotError ? ['bench/s8-growth.png'] : []));
  }
  if (plotError) console.log(`the S8 plot was not made: ${plotError}`);
  console.log(
    `written: ${written.join(', ')}${swept ? `; swept ${swept} leftover queue(s)/exchange(s)` : ''}${dropped ? `; dropped ${dropped} leftover table(s)` : ''}`,
  );
  return interrupted ? 130 : runs.every((r) => r.ok) ? 0 : 1;
}
