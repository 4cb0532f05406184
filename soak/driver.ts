/**
 * The chaos soak (RELIABILITY.md 43): several app instances exchange commands, events, requests,
 * failing-then-succeeding messages and the newer features' messages (explicit settlement, delayed
 * sends, batches, shared queues, idempotent handlers on Redis and PostgreSQL, the outbox) while a
 * fault driver kills their connections, forces channel errors, deletes their queues, raises memory
 * alarms, restarts instances, and stalls, resets and terminates their PostgreSQL and Redis
 * connections. At the end it drains, counts and exits non-zero if a confirmed message is lost or a
 * feature broke a rule.
 *
 *   npm run soak -- [--minutes 10 | --seconds 60] [--instances 3] [--rate 30] [--faults all|local]
 *                   [--no-alarm] [--alarm-seconds 3] [--max-alarms N] [--drain-seconds 240]
 *                   [--queue-type quorum|classic] [--url amqp://...]
 */
import { fork, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { delayExchangeName } from '../lib/topology/delay-queues';
import { Admin, brokerMajorVersion, heldForDeadLettering, rabbitmqctl } from './broker-admin';
import { DataServices } from './data-faults';
import { FaultDriver } from './faults';
import { Ledger } from './ledger';
import {
  FEATURES,
  HANDLERS,
  names,
  RETRY,
  type Delays,
  type Feature,
  type FromInstance,
  type Handler,
  type QueueType,
  type ToInstance,
} from './protocol';
import { printSummary, violations } from './summary';

interface Options {
  durationMs: number;
  instances: number;
  rate: number;
  alarms: boolean;
  alarmMs: number;
  maxAlarms: number;
  drainMs: number;
  /** Undefined: quorum on RabbitMQ 4, classic before (see defaultQueueType). */
  queueType?: QueueType;
  url: string;
}

function parseOptions(argv: string[]): Options {
  const options: Options = {
    durationMs: 10 * 60_000,
    instances: 3,
    rate: 30,
    alarms: true,
    alarmMs: 3000,
    maxAlarms: Infinity,
    // A quorum retry queue holds a copy that expired while its handler queue was away, and tries
    // it again after RabbitMQ's dead_letter_worker_publisher_confirm_timeout (180 s by default).
    drainMs: 240_000,
    url: process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672',
  };
  for (let i = 0; i < argv.length; i++) {
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${argv[i - 1]} needs a value`);
      return v;
    };
    const number = () => {
      const v = Number(value());
      if (!Number.isFinite(v) || v <= 0) throw new Error(`${argv[i - 1]} needs a positive number`);
      return v;
    };
    switch (argv[i]) {
      case '--minutes':
        options.durationMs = number() * 60_000;
        break;
      case '--seconds':
        options.durationMs = number() * 1000;
        break;
      case '--instances':
        options.instances = Math.round(number());
        break;
      case '--rate':
        options.rate = number();
        break;
      case '--no-alarm':
        options.alarms = false;
        break;
      case '--faults': {
        // local: only what the soak owns (its connections, queues, instances and database proxies); no broker-wide memory alarm
        const scope = value();
        if (scope !== 'all' && scope !== 'local') throw new Error(`--faults must be all or local (got ${scope})`);
        if (scope === 'local') options.alarms = false;
        break;
      }
      case '--alarm-seconds':
        options.alarmMs = number() * 1000;
        break;
      case '--max-alarms':
        options.maxAlarms = Math.round(number());
        break;
      case '--drain-seconds':
        options.drainMs = number() * 1000;
        break;
      case '--queue-type': {
        const type = value();
        if (type !== 'quorum' && type !== 'classic') throw new Error(`--queue-type must be quorum or classic (got ${type})`);
        options.queueType = type;
        break;
      }
      case '--url':
        options.url = value();
        break;
      default:
        throw new Error(`Unknown option ${argv[i]} (see soak/README.md)`);
    }
  }
  return options;
}

/** One instance process; a restart makes a new generation with a new label. */
class Instance {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  private readonly waiting = new Map<string, () => void>();

  constructor(
    readonly label: string,
    script: string,
    env: NodeJS.ProcessEnv,
    logFile: string,
    ledger: Ledger,
  ) {
    const log = openSync(logFile, 'a');
    this.child = fork(script, [], { env, stdio: ['ignore', log, log, 'ipc'] });
    this.child.on('message', (message: FromInstance) => {
      if (message.type === 'batch') ledger.add(message);
      else this.waiting.get(message.type)?.();
    });
    this.exited = new Promise((resolve) => this.child.on('exit', (code) => resolve(code)));
  }

  /** Resolves on the instance's `type` message, rejects if it exits first or after `ms`. */
  when(type: 'ready' | 'idle' | 'bye', ms: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.label}: no "${type}" after ${ms} ms`)), ms);
      this.waiting.set(type, () => {
        clearTimeout(timer);
        resolve();
      });
      void this.exited.then((code) => {
        clearTimeout(timer);
        if (type === 'bye') resolve();
        else reject(new Error(`${this.label} exited (code ${code}) before "${type}"`));
      });
    });
  }

  tell(message: ToInstance): void {
    if (this.child.connected) this.child.send(message);
  }

  /** SIGTERM and wait for the exit; SIGKILL after `ms` (returns whether it had to). */
  async stop(ms = 30_000): Promise<boolean> {
    if (this.child.exitCode !== null) return false;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await this.exited;
    clearTimeout(timer);
    return this.child.signalCode === 'SIGKILL';
  }
}

/**
 * Quorum queues on RabbitMQ 4, where they are what production runs; classic on 3.x, where
 * 3.10.8 can leave the consumer of a quorum queue deleted and declared again stuck (soak/README.md).
 */
async function defaultQueueType(): Promise<QueueType> {
  return (await brokerMajorVersion()) >= 4 ? 'quorum' : 'classic';
}

async function main(): Promise<number> {
  const parsed = parseOptions(process.argv.slice(2));
  const options = { ...parsed, queueType: parsed.queueType ?? (await defaultQueueType()) };
  const prefix = `t-soak-${randomBytes(4).toString('hex')}`;
  const logs = mkdtempSync(join(tmpdir(), `${prefix}-`));
  const script = join(__dirname, 'instance.js');
  const ledger = new Ledger();
  const delays = drawDelays();
  const admin = await Admin.open(options.url);
  const data = await DataServices.open(prefix);
  const live: Instance[] = [];
  let generation = 0;
  let hardKills = 0;
  let restarting = false;
  const started = Date.now();
  const say = (text: string) => console.log(`[soak ${((Date.now() - started) / 1000).toFixed(1)}s] ${text}`);

  const spawn = async (slot: number): Promise<Instance> => {
    const label = `i${slot}g${generation++}`;
    const env = {
      ...process.env,
      SOAK_URL: options.url,
      SOAK_PREFIX: prefix,
      SOAK_LABEL: label,
      SOAK_RATE: String(options.rate),
      SOAK_QUEUE_TYPE: options.queueType,
      SOAK_PG_PORT: String(data.pgProxy.port),
      SOAK_REDIS_PORT: String(data.redisProxy.port),
      SOAK_DELAYS: `${delays.sendMs},${delays.retryMs}`,
    };
    const instance = new Instance(label, script, env, join(logs, `${label}.log`), ledger);
    await instance.when('ready', 60_000);
    return instance;
  };

  const faults = new FaultDriver(
    prefix,
    admin,
    data,
    {
      restartInstance: async () => {
        restarting = true;
        try {
          const slot = Math.floor(Math.random() * live.length);
          const before = live[slot].label;
          if (await live[slot].stop()) hardKills++;
          live[slot] = await spawn(slot);
          return `${before} -> ${live[slot].label}`;
        } finally {
          restarting = false;
        }
      },
      publishToMissingExchange: () => {
        const instance = live[Math.floor(Math.random() * live.length)];
        instance.tell({ type: 'publish-to-missing-exchange' });
        return instance.label;
      },
    },
    {
      alarms: options.alarms,
      alarmMs: options.alarmMs,
      maxAlarms: options.maxAlarms,
      minGapMs: 1000,
      maxGapMs: 3000,
      queueType: options.queueType,
    },
  );

  // Whatever happens, the watermark goes back and the soak's processes and names go away.
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (interrupted) return;
    interrupted = true;
    say(`${signal}: stopping faults, restoring the memory watermark, cleaning up`);
    void faults
      .stop()
      .catch((error: Error) => console.error(`could not restore the watermark: ${error.message}`))
      .finally(async () => {
        for (const instance of live) instance.child.kill('SIGKILL');
        await cleanup(admin, prefix, delays).catch(() => undefined);
        await data.cleanup().catch(() => undefined);
        process.exit(130);
      });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    say(
      `prefix ${prefix}, ${options.queueType} queues, ${options.instances} instances at ${options.rate} ops/s each, ${options.durationMs / 1000} s of faults` +
        `${options.alarms ? `, memory alarms of ${options.alarmMs / 1000} s` : ', no memory alarms'}; delays ${delays.sendMs} ms (sends), ` +
        `${delays.retryMs} ms (context.retry); PostgreSQL proxy :${data.pgProxy.port}, Redis proxy :${data.redisProxy.port}; instance logs in ${logs}`,
    );
    for (let slot = 0; slot < options.instances; slot++) live.push(await spawn(slot));
    faults.start();
    await new Promise((resolve) => setTimeout(resolve, options.durationMs));
    say('stopping faults');
    await faults.stop();
    while (restarting) await new Promise((resolve) => setTimeout(resolve, 100));

    say('stopping producers, draining');
    for (const instance of live) instance.tell({ type: 'stop-producing' });
    await Promise.all(live.map((instance) => instance.when('idle', 60_000).catch((error: Error) => say(error.message))));
    const drained = await drain(admin, data, prefix, delays, ledger, options.drainMs);
    say(drained ? 'drained' : `drain bound of ${options.drainMs / 1000} s reached`);

    say('stopping instances');
    for (const instance of live) {
      const bye = instance.when('bye', 40_000).catch(() => undefined);
      if (await instance.stop()) hardKills++;
      await bye;
    }
    await collectLeftovers(admin, prefix, delays, ledger);
    ledger.outboxTable(await data.outboxRows());

    const held = await heldAfterDrain(prefix, delays);
    const groups = ledger.figures(faults.log, options.queueType);
    const lost = Object.values(groups).reduce((sum, g) => sum + g.lost, 0);
    const wrong = violations(ledger, groups);
    const report = {
      prefix,
      durationSeconds: options.durationMs / 1000,
      queueType: options.queueType,
      instances: options.instances,
      restartsAndHardKills: { restarts: faults.log.counts['restart-instance'], hardKills },
      sent: ledger.sent,
      failedTriesThenRetried: ledger.failedTries,
      groups: Object.fromEntries(
        Object.entries(groups).map(([group, f]) => [
          group,
          {
            ...f,
            heldForDeadLettering: held[group as Handler],
            lostIds: f.lostIds.map(
              (l) =>
                `${l.id} sent ${((l.sentAt - started) / 1000).toFixed(2)}s confirmed ${((l.confirmedAt - started) / 1000).toFixed(2)}s` +
                (l.failedTries.length > 0
                  ? `, failed tries at ${l.failedTries.map((at) => `${((at - started) / 1000).toFixed(2)}s`).join(' ')}`
                  : ', never tried'),
            ),
          },
        ]),
      ),
      deadLetteredBy: ledger.deadLetteredBy(),
      requests: { answered: ledger.requestsAnswered, failedWithTypedError: ledger.requestsFailed },
      publishesToMissingExchange: ledger.missingExchange,
      delays,
      outbox: ledger.outbox,
      featureCounters: ledger.counters,
      violations: wrong,
      faults: faults.log.counts,
      faultTimeline: faults.log.timeline.map(
        (f) => `${((f.from - started) / 1000).toFixed(1)}-${((f.to - started) / 1000).toFixed(1)}s ${f.kind}: ${f.detail}`,
      ),
      faultDriverErrors: faults.log.errors,
      lost,
    };
    console.log(JSON.stringify(report, null, 2));
    printSummary(groups, held, lost, ledger, faults.log, options.queueType);
    return lost > 0 || Object.keys(wrong).length > 0 ? 1 : 0;
  } finally {
    await faults.stop().catch((error: Error) => console.error(`could not restore the watermark: ${error.message}`));
    data.resume();
    for (const instance of live) if (instance.child.exitCode === null) instance.child.kill('SIGKILL');
    await cleanup(admin, prefix, delays);
    await data.cleanup();
    await admin.close();
  }
}

/**
 * Delays of the run, odd and drawn at random: they name broker-wide delay queues
 * (`messaging.delayed.<ms>ms.(default)`), so another app on the broker is most unlikely to share them.
 */
function drawDelays(): Delays {
  const odd = (from: number, span: number) => from + 2 * Math.floor(Math.random() * (span / 2)) + 1;
  return { sendMs: odd(1000, 1000), retryMs: odd(300, 600) };
}

/** Each handler group's queue. */
function groupQueues(prefix: string): Array<{ handler: Handler; queue: string }> {
  const n = names(prefix);
  return [
    { handler: 'command', queue: n.commands },
    { handler: 'audit', queue: n.audit },
    { handler: 'billing', queue: n.billing },
    ...FEATURES.map((feature) => ({ handler: feature, queue: n.feature(feature) })),
  ];
}

/**
 * The soak's queues where messages still wait, with the groups whose messages they hold: each
 * handler's queue and retry queues, the queues of `context.retry({ delayMs })` (settle and batch
 * handlers), and the delay queues of the run's delays.
 */
function liveQueues(prefix: string, delays: Delays): Array<{ groups: Handler[]; queue: string }> {
  const out: Array<{ groups: Handler[]; queue: string }> = [];
  for (const { handler, queue } of groupQueues(prefix)) {
    out.push({ groups: [handler], queue });
    for (const delay of RETRY.delaysMs) out.push({ groups: [handler], queue: `${queue}.retry.${delay}ms` });
  }
  const retriedBy: Feature[] = ['settle', 'batch'];
  for (const handler of retriedBy)
    out.push({ groups: [handler], queue: `${names(prefix).feature(handler)}.retry.${delays.retryMs}ms.adhoc` });
  out.push({ groups: retriedBy, queue: delayExchangeName('', delays.retryMs) }); // where such retries waited before per-queue ones
  out.push({ groups: ['delayed'], queue: delayExchangeName('', delays.sendMs) });
  return out;
}

/**
 * Waits until every confirmed message is handled, or nothing moves and the queues (and the outbox)
 * are empty (held dead-letters included: they come back); bounded.
 */
async function drain(admin: Admin, data: DataServices, prefix: string, delays: Delays, ledger: Ledger, boundMs: number): Promise<boolean> {
  const deadline = Date.now() + boundMs;
  let quiet = 0;
  let last = -1;
  while (Date.now() < deadline) {
    const outstanding = ledger.outstanding();
    const unsent = await data.unsentOutboxRows();
    if (outstanding === 0 && unsent === 0) return true;
    const queues = liveQueues(prefix, delays).map(({ queue }) => queue);
    const depths = await Promise.all(queues.map((queue) => admin.depth(queue)));
    const held = await heldForDeadLettering(queues);
    const queued = [...depths, ...held, unsent].reduce<number>((sum, d) => sum + (d ?? 0), 0);
    quiet = queued === 0 && outstanding === last ? quiet + 1 : 0;
    if (quiet >= 5) return true; // what is missing is not coming back by waiting
    last = outstanding;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  return false;
}

/** Per group, the copies its retry queues still hold for dead-lettering (known by count only, not by id). */
async function heldAfterDrain(prefix: string, delays: Delays): Promise<Record<Handler, number>> {
  const queues = liveQueues(prefix, delays);
  const held = await heldForDeadLettering(queues.map(({ queue }) => queue));
  const out = Object.fromEntries(HANDLERS.map((h) => [h, 0])) as Record<Handler, number>;
  queues.forEach(({ groups }, i) => (out[groups[0]] += held[i])); // only quorum queues hold copies: never a delay queue
  return out;
}

/** Reads what is left in the soak's queues (still queued) and dead-letter queues, by message id. */
async function collectLeftovers(admin: Admin, prefix: string, delays: Delays, ledger: Ledger): Promise<void> {
  for (const { groups, queue } of liveQueues(prefix, delays)) {
    const ids = (await admin.takeAll(queue)).map((m) => String(m.properties.messageId));
    for (const group of groups) ledger.queuedIn(group, ids);
  }
  for (const { handler, queue } of groupQueues(prefix)) {
    const dead = await admin.takeAll(`${queue}.dlq`);
    ledger.deadIn(
      handler,
      dead.map((m) => ({ id: String(m.properties.messageId), error: String(m.properties.headers?.['x-error-name']) })),
    );
  }
}

/** Deletes every queue and exchange whose name starts with the soak's prefix, and the run's delay queues. */
async function cleanup(admin: Admin, prefix: string, delays: Delays): Promise<void> {
  // A message the drain could not take (held by a consumer RabbitMQ still counts, or not ready
  // yet) is named here before its queue goes: the difference between lost and stuck.
  const left = (await rabbitmqctl('list_queues', 'name', 'messages', 'messages_ready', 'messages_unacknowledged', 'consumers'))
    .split('\n')
    .map((line) => line.trim().split('\t'))
    .filter(([name, messages]) => name?.startsWith(prefix) && Number(messages) > 0);
  if (left.length > 0)
    console.log(`[soak] left in the broker at cleanup (name, messages, ready, unacked, consumers): ${JSON.stringify(left)}`);
  const list = async (what: string) =>
    (await rabbitmqctl(`list_${what}`, 'name'))
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.startsWith(prefix));
  const delayNames = [delays.sendMs, delays.retryMs].map((ms) => delayExchangeName('', ms));
  for (const queue of [...(await list('queues')), ...delayNames]) await admin.deleteQueue(queue);
  for (const exchange of [...(await list('exchanges')), ...delayNames])
    await admin.on((c) => c.deleteExchange(exchange)).catch(() => undefined);
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error);
    process.exit(2);
  },
);
