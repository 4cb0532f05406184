import { randomBytes } from 'node:crypto';
import { transportFor } from '../../lib/transport/transport-for';
import type { Message, PublishProperties, TransportChannel, TransportConnection } from '../../lib/transport/transport.interface';
import { rabbitmqctl } from './rabbitmq-admin';

export { rabbitmqctl };

/** The real RabbitMQ, for tests that need it whatever the transport under test. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';
/** Its port on 127.0.0.1 (5672; the RabbitMQ 4 node of test/rabbitmq4 listens on 5673). */
export const BROKER_PORT = Number(new URL(AMQP_URL).port || 5672);

/**
 * The transport the behaviour suite runs on: `memory` (the in-process broker) or RabbitMQ.
 * Vitest's projects set it (see vitest.config.mts); the same tests run on both.
 */
export const ON_MEMORY = process.env.TEST_TRANSPORT === 'memory';
export const BROKER_URL = ON_MEMORY ? 'memory://' : AMQP_URL;

/** A name no other test uses; every test queue and exchange starts with "t-" (see global-teardown). */
export function unique(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`;
}

/**
 * A transport connection to the broker under test, for the test's side of things: publishing what a foreign producer
 * would, inspecting queues, and cleaning up. Everything it declares by `track` is deleted by
 * `cleanup()`, with the dead-letter and retry queues of a handler queue.
 */
export class Broker {
  private constructor(
    readonly connection: TransportConnection,
    readonly channel: TransportChannel,
  ) {}

  private readonly queues = new Set<string>();
  private readonly exchanges = new Set<string>();
  private readonly prefixes = new Set<string>();

  static async open(url = BROKER_URL): Promise<Broker> {
    const connection = await transportFor(url).connect(url, { heartbeatSeconds: 10, connectionName: 'tests', timeoutMs: 10_000 });
    connection.on('error', () => undefined);
    const channel = await connection.createChannel();
    return new Broker(connection, channel);
  }

  /** Marks a handler queue (and its .dlq and .retry.* queues; default policy: 1 s, 5 s) for deletion. */
  queue(name: string, retryDelays: number[] = [1000, 5000]): string {
    this.queues.add(name);
    this.queues.add(`${name}.dlq`);
    for (const d of retryDelays) this.queues.add(`${name}.retry.${d}ms`);
    return name;
  }

  exchange(name: string): string {
    this.exchanges.add(name);
    return name;
  }

  /**
   * Marks every queue and exchange whose name will start with `prefix` for deletion, e.g. the
   * per-instance retry queues of broadcast handlers (`<base>.retry.<ms>ms.<instance>`).
   */
  sweep(prefix: string): string {
    this.prefixes.add(prefix);
    return prefix;
  }

  /** Messages ready in a queue (0 if it does not exist). */
  async depth(queue: string): Promise<number> {
    const channel = await this.connection.createChannel();
    try {
      return (await channel.checkQueue(queue)).messageCount;
    } catch {
      return 0;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Whether a queue exists, by a passive declare on a channel of its own (a 404 closes it). */
  async exists(queue: string): Promise<boolean> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    try {
      await channel.checkQueue(queue);
      return true;
    } catch {
      return false;
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Takes every ready message off a queue (acked), e.g. to read a dead-letter queue. */
  async drainQueue(queue: string): Promise<Message[]> {
    const out: Message[] = [];
    for (;;) {
      const msg = await this.channel.get(queue, { noAck: true });
      if (!msg) return out;
      out.push(msg);
    }
  }

  publishRaw(queue: string, content: Buffer | string, options: PublishProperties = {}): void {
    this.channel.publish('', queue, Buffer.isBuffer(content) ? content : Buffer.from(content), options);
  }

  /**
   * Deletes what was tracked, and with a `prefix` also every queue and exchange whose name starts
   * with it (for apps whose queue names the test does not list), then closes the connection.
   */
  async cleanup(prefix?: string): Promise<void> {
    if (prefix) this.prefixes.add(prefix);
    if (this.prefixes.size > 0 && !ON_MEMORY) {
      const prefixes = [...this.prefixes];
      const names = async (what: string) =>
        (await rabbitmqctl(`list_${what}`, 'name'))
          .split('\n')
          .map((line) => line.trim())
          .filter((name) => prefixes.some((p) => name.startsWith(p)));
      // Side by side: each call starts an Erlang VM, seconds each on a loaded machine.
      const [queues, exchanges] = await Promise.all([names('queues'), names('exchanges')]);
      for (const queue of queues) this.queues.add(queue);
      for (const exchange of exchanges) this.exchanges.add(exchange);
    }
    const channel = await this.connection.createChannel();
    for (const q of this.queues) await channel.deleteQueue(q).catch(() => undefined);
    for (const e of this.exchanges) await channel.deleteExchange(e).catch(() => undefined);
    await channel.close().catch(() => undefined);
    await this.connection.close().catch(() => undefined);
  }
}

/** Resolves when `check` turns true; fails with `what` after `timeoutMs`. Polls every 20 ms. */
export async function waitFor(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A promise with its resolve function, for awaiting an event a handler signals. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}
