import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { createInterface } from 'node:readline';
import * as amqp from 'amqplib';
import { AMQP_URL, Broker, unique, waitFor } from '../support/broker';

/**
 * "docker compose up --scale worker=3, then --scale worker=1", without Docker: three worker
 * processes of the built sample app share orders.place; 2,000 orders go in; after ~600 are
 * handled, two workers get SIGTERM (what compose sends when it scales down). Every order must be
 * handled exactly once: none lost, none handled twice (a handled-then-redelivered one counts).
 * Workers report each order they handled on stdout (LOG_EACH=1: "handled order <id>").
 */
const ROOT = path.resolve(__dirname, '../..');
const MAIN = path.join(ROOT, 'dist/sample-app/main.js');
const TOTAL = 2_000;
const SIGTERM_AFTER = 600;
const WORKERS = 3;
const STOPPED = 2;

interface Worker {
  index: number;
  child: ChildProcess;
  handled: number;
  ready: Promise<void>;
  exited: Promise<void>;
  exit?: { code: number | null; signal: NodeJS.Signals | null };
  termAt?: number;
  exitAt?: number;
  /** The library's closing line: "messaging:shutdown in-flight at start N, finished N, returned to queue N, took N ms". */
  shutdownLine?: string;
  stderr: string[];
}

describe('scale-down: 3 sample-app workers to 1 while 2,000 orders flow', () => {
  const prefix = `${unique('scale')}.`;
  const queue = `${prefix}orders.place`;
  const handledBy = new Map<string, number[]>();
  const workers: Worker[] = [];
  let handledLines = 0;
  let broker: Broker;
  let producer: amqp.ChannelModel | undefined;

  beforeAll(() => buildIfStale(), 120_000);

  beforeAll(async () => {
    broker = await Broker.open();
    for (let i = 0; i < WORKERS; i++) workers.push(startWorker(i));
    await Promise.all(workers.map((w) => w.ready));
  }, 30_000);

  afterAll(async () => {
    for (const worker of workers) {
      if (!worker.exit) worker.child.kill('SIGKILL');
    }
    await Promise.all(workers.map((w) => w.exited));
    await producer?.close().catch(() => undefined);
    await broker.cleanup(prefix);
  }, 30_000);

  function startWorker(index: number): Worker {
    const child = spawn(process.execPath, [MAIN], {
      cwd: ROOT,
      env: {
        ...process.env,
        ROLE: 'worker',
        AMQP_URL,
        QUEUE_PREFIX: prefix,
        SERVICE_NAME: 'scale-worker',
        LOG_EACH: '1',
        PREFETCH: '10',
        WORK_MS: '5-20',
        SHUTDOWN_TIMEOUT_MS: '10000',
        NO_COLOR: '1',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const worker = { index, child, handled: 0, stderr: [] } as unknown as Worker;
    let markReady!: () => void;
    let failReady!: (error: Error) => void;
    worker.ready = new Promise<void>((resolve, reject) => ((markReady = resolve), (failReady = reject)));
    worker.exited = new Promise<void>((resolve) =>
      child.once('exit', (code, signal) => {
        worker.exit = { code, signal };
        worker.exitAt = Date.now();
        failReady(new Error(`worker ${index} exited (${signal ?? code}) before it was ready:\n${worker.stderr.join('\n')}`));
        resolve();
      }),
    );
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const handled = /handled order (\S+)/.exec(line);
      if (handled) {
        handledLines++;
        worker.handled++;
        const by = handledBy.get(handled[1]) ?? [];
        by.push(index);
        handledBy.set(handled[1], by);
      } else if (line.includes('worker ready')) {
        markReady();
      } else if (line.includes('messaging:shutdown')) {
        worker.shutdownLine = line.slice(line.indexOf('messaging:shutdown'));
      }
    });
    createInterface({ input: child.stderr! }).on('line', (line) => {
      worker.stderr.push(line);
      if (worker.stderr.length > 50) worker.stderr.shift();
    });
    return worker;
  }

  it('handles every order exactly once while 2 of 3 workers are SIGTERMed mid-stream', async () => {
    const started = Date.now();
    producer = await amqp.connect(AMQP_URL);
    const channel = await producer.createConfirmChannel();
    for (let i = 0; i < TOTAL; i++) {
      const body = Buffer.from(JSON.stringify({ orderId: `o-${i}`, sku: 'WIDGET', quantity: 1 }));
      const fits = channel.sendToQueue(queue, body, {
        messageId: randomUUID(),
        contentType: 'application/json',
        persistent: true,
        headers: { 'x-request-id': `scale-${i}` },
      });
      if (!fits) await new Promise((resolve) => channel.once('drain', resolve));
    }
    await channel.waitForConfirms();
    const published = Date.now();

    await waitFor(() => handledLines >= SIGTERM_AFTER, `${SIGTERM_AFTER} handled orders`, 20_000);
    const handledAtSigterm = handledLines;
    for (const worker of workers.slice(0, STOPPED)) {
      worker.termAt = Date.now();
      worker.child.kill('SIGTERM');
    }

    // Every order handled, or the deadline: the counts are printed either way.
    const deadline = Date.now() + 40_000;
    while (handledBy.size < TOTAL && Date.now() < deadline) await sleep(20);
    const allHandled = Date.now();
    await upTo(Promise.all(workers.slice(0, STOPPED).map((w) => w.exited)), 15_000);
    await sleep(1_000); // a message handled twice would show up now
    const ready = await broker.depth(queue);
    const deadLettered = await broker.depth(`${queue}.dlq`);

    const lost = Array.from({ length: TOTAL }, (_, i) => `o-${i}`).filter((id) => !handledBy.has(id));
    const duplicates = [...handledBy].filter(([, by]) => by.length > 1);
    const unknown = [...handledBy.keys()].filter((id) => !/^o-\d+$/.test(id) || Number(id.slice(2)) >= TOTAL);

    const last = workers[WORKERS - 1];
    last.termAt = Date.now();
    last.child.kill('SIGTERM');
    await upTo(last.exited, 15_000);

    console.log(
      [
        `scale-down: ${TOTAL} orders, ${WORKERS} workers (prefetch 10, 5-20 ms each), SIGTERM to ${STOPPED} of them at ${handledAtSigterm} handled`,
        `  published in ${published - started} ms; all handled ${allHandled - started} ms after the first publish`,
        ...workers.map(
          (w) =>
            `  worker ${w.index} (pid ${w.child.pid}): handled ${w.handled}` +
            (w.termAt !== undefined
              ? `; SIGTERM -> exit in ${w.exitAt !== undefined ? `${w.exitAt - w.termAt} ms` : 'NOT EXITED'} (${w.exit?.signal ?? w.exit?.code ?? '-'})` +
                (w.index < STOPPED ? ' [stopped mid-stream]' : ' [stopped at the end]') +
                `; ${w.shutdownLine ?? 'no shutdown line'}`
              : ''),
        ),
        `  unique handled ${handledBy.size}/${TOTAL}, lost ${lost.length}, duplicates ${duplicates.length}, ` +
          `handled lines ${handledLines}, left in queue ${ready}, dead-lettered ${deadLettered}`,
        ...(lost.length ? [`  lost: ${lost.slice(0, 20).join(', ')}`] : []),
        ...(duplicates.length
          ? [
              `  duplicates: ${duplicates
                .slice(0, 20)
                .map(([id, by]) => `${id} by ${by.join('+')}`)
                .join(', ')}`,
            ]
          : []),
      ].join('\n'),
    );

    expect(handledAtSigterm).toBeLessThan(TOTAL - 500); // the SIGTERMs really came mid-stream
    for (const worker of workers.slice(0, STOPPED)) {
      expect(worker.exit).toBeDefined();
      // Nest closes the app, then re-raises the signal: a graceful exit shows as SIGTERM (or 0).
      expect(worker.exit!.signal === 'SIGTERM' || worker.exit!.code === 0).toBe(true);
      expect(worker.handled).toBeGreaterThan(0);
    }
    expect(unknown).toEqual([]);
    expect(lost).toEqual([]);
    expect(duplicates).toEqual([]);
    expect(handledLines).toBe(TOTAL);
    expect(ready).toBe(0);
    expect(deadLettered).toBe(0);
    expect(last.handled).toBeGreaterThan(0);
    expect(last.exit).toBeDefined();
  }, 60_000);
});

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Waits for `promise`, but at most `ms`. */
async function upTo(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

/** `npm run build` when dist/sample-app/main.js is missing or older than a source of lib/ or sample-app/. */
function buildIfStale(): void {
  const newest = Math.max(...['lib', 'sample-app'].flatMap((dir) => sourceTimes(path.join(ROOT, dir))));
  if (existsSync(MAIN) && statSync(MAIN).mtimeMs >= newest) return;
  const tsc = require.resolve('typescript/bin/tsc', { paths: [ROOT] });
  try {
    execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', stdio: 'pipe' });
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed:\n${stdout ?? ''}${stderr ?? ''}`, { cause: error });
  }
}

function sourceTimes(dir: string): number[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceTimes(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.spec.ts') ? [statSync(full).mtimeMs] : [];
  });
}
