/**
 * One app instance of the soak, run as its own Node process by the driver: a Nest app with
 * MessagingModule and handlers for commands, two event subscriber groups and requests, plus a
 * producer that sends all three kinds. Everything it sends, has confirmed and handles goes to the
 * driver over IPC. Configured by environment: SOAK_URL, SOAK_PREFIX, SOAK_LABEL, SOAK_RATE,
 * SOAK_QUEUE_TYPE.
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageHandler, MessagingModule, RpcClient, type MessageContext } from '../lib';
import { FLUSH_MS, handlerOptions, names, type Batch, type Handler, type Kind, type QueueType, type ToInstance } from './protocol';

const url = required('SOAK_URL');
const prefix = required('SOAK_PREFIX');
const label = required('SOAK_LABEL');
const ratePerSecond = Number(process.env.SOAK_RATE ?? 30);
const n = names(prefix);
const handlers = handlerOptions(prefix, required('SOAK_QUEUE_TYPE') as QueueType);

interface Payload {
  seq: number;
  /** The handler throws on the first try of this message and succeeds on the next. */
  failFirst: boolean;
}

class TransientFailure extends Error {
  override name = 'TransientFailure';
}

/** What happened since the last flush. */
let batch = emptyBatch();

function emptyBatch(): Batch {
  return { type: 'batch', confirmed: [], rejected: [], handled: [], failed: [], requests: { answered: 0, failed: {} }, missingExchange: {} };
}

function flush(): Promise<void> {
  const out = batch;
  batch = emptyBatch();
  return new Promise((resolve) => process.send!(out, () => resolve()));
}

function handle(handler: Handler, payload: Payload, context: MessageContext): void {
  if (payload.failFirst && context.attempt === 1) {
    batch.failed.push({ handler, id: context.messageId!, attempt: context.attempt, at: Date.now() });
    throw new TransientFailure(`${handler} fails the first try of ${context.messageId}`);
  }
  batch.handled.push({ handler, id: context.messageId!, attempt: context.attempt });
}

@Injectable()
class SoakHandlers {
  @MessageHandler(handlers.command)
  command(payload: Payload, context: MessageContext) {
    handle('command', payload, context);
  }

  @MessageHandler(handlers.audit)
  audit(payload: Payload, context: MessageContext) {
    handle('audit', payload, context);
  }

  @MessageHandler(handlers.billing)
  billing(payload: Payload, context: MessageContext) {
    handle('billing', payload, context);
  }

  @MessageHandler(handlers.rpc)
  answer(payload: Payload) {
    return { echo: payload.seq };
  }
}

@Module({
  imports: [
    MessagingModule.forRoot({
      uri: url,
      serviceName: `${prefix}-${label}`,
      reconnect: { initialDelayMs: 100, maxDelayMs: 2000 },
      publishTimeoutMs: 15_000,
      shutdownTimeoutMs: 5000,
    }),
  ],
  providers: [SoakHandlers],
})
class SoakInstanceModule {}

/** Sends commands, events and requests at `ratePerSecond` until stopped. */
class Producer {
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(private readonly client: RpcClient) {}

  start(): void {
    this.timer = setInterval(() => this.next(), 1000 / ratePerSecond);
  }

  /** Stops sending and resolves when what was sent has settled (or after `boundMs`). */
  async stop(boundMs = 20_000): Promise<void> {
    clearInterval(this.timer);
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((resolve) => setTimeout(resolve, boundMs).unref())]);
  }

  private next(): void {
    if (this.inFlight.size >= 200) return; // the broker is blocked or away: do not pile up
    const seq = this.seq++;
    const payload: Payload = { seq, failFirst: Math.random() < 0.2 };
    const roll = Math.random();
    const op = roll < 0.5 ? this.send('command', seq, payload) : roll < 0.8 ? this.send('event', seq, payload) : this.request(payload);
    this.inFlight.add(op);
    void op.finally(() => this.inFlight.delete(op));
  }

  private async send(kind: Kind, seq: number, payload: Payload): Promise<void> {
    const id = `${label}-${kind === 'command' ? 'c' : 'e'}${seq}`;
    const sentAt = Date.now();
    try {
      if (kind === 'command') await this.client.send(n.commands, payload, { messageId: id });
      else await this.client.publish(n.exchange, n.routingKey, payload, { messageId: id });
      batch.confirmed.push({ kind, id, sentAt, confirmedAt: Date.now() });
    } catch (error) {
      batch.rejected.push({ kind, id, sentAt, error: errorName(error) });
    }
  }

  private async request(payload: Payload): Promise<void> {
    try {
      await this.client.request(n.rpc, payload, { timeoutMs: 5000 });
      batch.requests.answered++;
    } catch (error) {
      const name = errorName(error);
      batch.requests.failed[name] = (batch.requests.failed[name] ?? 0) + 1;
    }
  }
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.constructor.name : `non-error ${typeof error}`;
}

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the soak driver starts this process)`);
  return value;
}

async function main(): Promise<void> {
  const app: INestApplicationContext = await NestFactory.createApplicationContext(SoakInstanceModule, { logger: ['error', 'warn'] });
  await app.init();
  const client = app.get(RpcClient);
  const producer = new Producer(client);
  const flusher = setInterval(() => void flush(), FLUSH_MS);
  let stopping: Promise<void> | undefined;

  const shutdown = () =>
    (stopping ??= (async () => {
      await producer.stop();
      await app.close();
      clearInterval(flusher);
      await flush();
      process.send!({ type: 'bye' }, () => process.exit(0));
    })());

  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => undefined); // the driver decides when this instance stops
  process.on('message', (message: ToInstance) => {
    if (message.type === 'stop-producing') {
      void producer.stop().then(async () => {
        await flush();
        process.send!({ type: 'idle' });
      });
    } else if (message.type === 'publish-to-missing-exchange') {
      client.publish(n.missingExchange, 'k', { probe: true }).then(
        () => (batch.missingExchange.confirmed = (batch.missingExchange.confirmed ?? 0) + 1),
        (error: unknown) => (batch.missingExchange[errorName(error)] = (batch.missingExchange[errorName(error)] ?? 0) + 1),
      );
    }
  });
  producer.start();
  process.send!({ type: 'ready' });
}

main().catch((error: unknown) => {
  console.error(`soak instance ${label} failed:`, error);
  process.exit(1);
});
