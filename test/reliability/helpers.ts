import * as net from 'node:net';
import type { INestApplicationContext, LoggerService, Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Injectable } from '@nestjs/common';
import { MessageHandler, type MessageContext } from '../../lib';
import { Broker, waitFor } from '../support/broker';
import type { Message } from '../../lib/transport/transport.interface';
import { type BrokerConnection, listConnections, rabbitmqctl } from '../support/rabbitmq-admin';

export { readWatermark, setWatermark } from '../support/rabbitmq-admin';
export type { BrokerConnection };
import type { TcpProxy } from '../support/tcp-proxy';

/**
 * Helpers shared by the reliability suite. Everything here acts only on what the test owns:
 * connections are found by the `connection_name` client property the library sets
 * (`<serviceName>:publisher` / `<serviceName>:consumer`), so other people's connections on the
 * shared broker are never touched.
 */

/** Connections whose connection_name starts with `<serviceName>:` (optionally only one role). */
export async function connectionsOf(serviceName: string, role?: 'publisher' | 'consumer'): Promise<BrokerConnection[]> {
  return (await listConnections()).filter(({ name }) => (role ? name === `${serviceName}:${role}` : name.startsWith(`${serviceName}:`)));
}

/** Force-closes this service's connections (never anyone else's); returns how many were closed. */
export async function closeConnections(serviceName: string, role?: 'publisher' | 'consumer', reason = 'reliability test'): Promise<number> {
  const targets = await connectionsOf(serviceName, role);
  await Promise.all(targets.map((c) => rabbitmqctl('close_connection', c.pid, reason).catch(() => undefined)));
  return targets.length;
}

export { CaptureLogger } from '../support/capture-logger';

/**
 * What a fault test file starts, undone after it: proxies resumed (so apps can close cleanly),
 * apps closed, proxies closed, tracked queues and exchanges deleted. Push into `apps`/`proxies`.
 */
export function faultRig(): { readonly broker: Broker; apps: INestApplicationContext[]; proxies: TcpProxy[] } {
  let broker: Broker | undefined;
  const rig = {
    get broker(): Broker {
      if (!broker) throw new Error('faultRig: the broker connection opens in beforeAll');
      return broker;
    },
    apps: [] as INestApplicationContext[],
    proxies: [] as TcpProxy[],
  };
  beforeAll(async () => {
    broker = await Broker.open();
  });
  afterAll(async () => {
    for (const proxy of rig.proxies) proxy.resume();
    for (const app of rig.apps) await app.close().catch(() => undefined);
    for (const proxy of rig.proxies) await proxy.close();
    await broker?.cleanup();
  });
  return rig;
}

/** A handler class consuming `queue` that counts each message it sees in `tally`. */
export function countingHandler(queue: string, tally: Tally) {
  @Injectable()
  class CountingHandler {
    @MessageHandler(queue)
    handle(_payload: unknown, context: MessageContext) {
      tally.see(context.messageId);
    }
  }
  return CountingHandler;
}

/** Like startApp() of test/support/app.ts, with a logger of the test's choosing. */
export async function startAppLogged(module: Type<unknown>, logger: LoggerService): Promise<INestApplicationContext> {
  const app = await NestFactory.createApplicationContext(module, { logger, abortOnError: false });
  await app.init();
  return app;
}

/** A TCP port on 127.0.0.1 where nothing listens (bound, then released). */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Records every unhandled rejection of this process while installed (the test files run in real
 * child processes, see vitest.config.mts, so it is the process the module runs in).
 * While it listens, Vitest stops reporting unhandled rejections itself (it assumes a second
 * listener handles them), so the watcher is the only net: `settled()` lets late reports arrive
 * and returns what was seen; `stop()` removes it and throws if anything was seen at any time,
 * so a watcher installed for a whole file cannot swallow a rejection from a test that never checked.
 */
export function watchUnhandledRejections(): { reasons: unknown[]; settled: () => Promise<unknown[]>; stop: () => Promise<void> } {
  const reasons: unknown[] = [];
  const listener = (reason: unknown) => reasons.push(reason);
  process.on('unhandledRejection', listener);
  // Node reports a rejection once the microtask queue has drained: two macrotasks let it arrive.
  const settled = async () => {
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setImmediate(resolve));
    return reasons;
  };
  return {
    reasons,
    settled,
    stop: async () => {
      await settled();
      process.off('unhandledRejection', listener);
      if (reasons.length > 0) {
        throw new Error(
          `${reasons.length} unhandled rejection(s) while watched: ${reasons.map((r) => (r instanceof Error ? r.stack : String(r))).join('\n')}`,
        );
      }
    },
  };
}

/** Samples process RSS every `everyMs` until stopped; returns the peak seen (bytes). */
export function sampleRss(everyMs = 25): { stop: () => { peak: number; samples: number } } {
  let peak = process.memoryUsage().rss;
  let samples = 1;
  const timer = setInterval(() => {
    samples++;
    peak = Math.max(peak, process.memoryUsage().rss);
  }, everyMs);
  return {
    stop: () => {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return { peak, samples: samples + 1 };
    },
  };
}

export const MB = 1024 * 1024;

/**
 * Counts what a handler saw, by message id: `handled` holds every id once, `calls` counts every
 * invocation, `duplicates` how many invocations saw an id a second time.
 */
export class Tally {
  readonly handled = new Set<string>();
  calls = 0;
  duplicates = 0;
  see(id: string | undefined): void {
    this.calls++;
    const key = id ?? `anon-${this.calls}`;
    if (this.handled.has(key)) this.duplicates++;
    else this.handled.add(key);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles a promise into a result, for counting outcomes of many sends. */
export async function outcome<T>(
  promise: Promise<T>,
): Promise<{ ok: true; value: T; at: number } | { ok: false; error: unknown; at: number }> {
  try {
    const value = await promise;
    return { ok: true, value, at: Date.now() };
  } catch (error) {
    return { ok: false, error, at: Date.now() };
  }
}

/** Whether a memory alarm is raised on the broker. */
export async function memoryAlarmActive(): Promise<boolean> {
  const raw = await rabbitmqctl('eval', 'rabbit_alarm:get_alarms().');
  return /memory/.test(raw);
}

export type SendResult = Awaited<ReturnType<typeof outcome<string>>>;

/**
 * Sends `total` messages with ids `<prefix>-<i>` through `send`, `concurrency` at a time, waiting
 * `spacingMs` between two sends of one worker; resolves with every outcome once all settled.
 */
export async function produce(
  send: (i: number, messageId: string) => Promise<string>,
  total: number,
  options: { concurrency?: number; spacingMs?: number; prefix?: string } = {},
): Promise<Array<SendResult & { id: string }>> {
  return produceUntil(send, (started) => started >= total, options);
}

/**
 * Sends until `stop(started)` turns true (e.g. on how long a fault takes to inject on a busy
 * broker), then resolves with every outcome once all settled.
 */
export async function produceUntil(
  send: (i: number, messageId: string) => Promise<string>,
  stop: (started: number) => boolean,
  { concurrency = 10, spacingMs = 0, prefix = 'm' }: { concurrency?: number; spacingMs?: number; prefix?: string } = {},
): Promise<Array<SendResult & { id: string }>> {
  const results: Array<SendResult & { id: string }> = [];
  let next = 0;
  const worker = async () => {
    while (!stop(next)) {
      const i = next++;
      const id = `${prefix}-${i}`;
      results[i] = { ...(await outcome(send(i, id))), id };
      if (spacingMs > 0) await sleep(spacingMs);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

/** `promise`, or `fallback` if it has not settled after `ms` (the timer is cleared either way). */
export async function within<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Takes messages off `queue` until `count` arrived (failing after `timeoutMs`), then once more a
 * moment later: anything beyond the count is a duplicate. Only a queue that exists is drained: a
 * basic.get on a missing one would close the broker's shared channel.
 */
export async function drainUntil(broker: Broker, queue: string, count: number, timeoutMs = 10_000): Promise<Message[]> {
  const got: Message[] = [];
  const drain = async () => ((await broker.depth(queue)) > 0 ? got.push(...(await broker.drainQueue(queue))) : 0);
  await waitFor(
    async () => {
      await drain();
      return got.length >= count;
    },
    `${count} messages in ${queue}`,
    timeoutMs,
  );
  await sleep(200);
  await drain();
  return got;
}
