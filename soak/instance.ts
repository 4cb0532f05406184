/**
 * One app instance of the soak, run as its own Node process by the driver: a Nest app with
 * MessagingModule and handlers for commands, two event subscriber groups and requests, and for
 * the newer features (feature-handlers.ts), plus a producer that sends all of them. Everything it
 * sends, has confirmed and handles goes to the driver over IPC. Configured by environment:
 * SOAK_URL, SOAK_PREFIX, SOAK_LABEL, SOAK_RATE, SOAK_QUEUE_TYPE, SOAK_PG_PORT, SOAK_REDIS_PORT
 * (the driver's proxies), SOAK_DELAYS (`<send ms>,<retry ms>`).
 */
import 'reflect-metadata';
import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageHandler, MessagingModule, Outbox, RpcClient, type MessageContext } from '../lib';
import { FeatureProducer } from './feature-producer';
import { featureHandlers } from './feature-handlers';
import { handle, type Payload } from './handler-tries';
import { count, errorName, flush, report, required } from './instance-report';
import { openStores } from './instance-stores';
import { FLUSH_MS, handlerOptions, names, type Delays, type Kind, type QueueType, type ToInstance } from './protocol';

const url = required('SOAK_URL');
const prefix = required('SOAK_PREFIX');
const label = required('SOAK_LABEL');
const ratePerSecond = Number(process.env.SOAK_RATE ?? 30);
const n = names(prefix);
const handlers = handlerOptions(prefix, required('SOAK_QUEUE_TYPE') as QueueType);
const [sendMs, retryMs] = required('SOAK_DELAYS').split(',').map(Number);
const delays: Delays = { sendMs, retryMs };
const stores = openStores(prefix, label, Number(required('SOAK_PG_PORT')), Number(required('SOAK_REDIS_PORT')));

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
      // A claim left by a run whose store went away ends soon (the soak's handlers take milliseconds).
      idempotency: { store: stores.idempotency, leaseMs: 10_000 },
      outbox: { pool: stores.pool, table: n.outboxTable, pollIntervalMs: 500 },
    }),
  ],
  providers: [SoakHandlers, featureHandlers(handlers, delays)],
})
class SoakInstanceModule {}

/** Sends commands, events and requests at `ratePerSecond` until stopped. */
class Producer {
  private seq = 0;
  private timer?: NodeJS.Timeout;
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    private readonly client: RpcClient,
    private readonly features: FeatureProducer,
  ) {}

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
    const op =
      roll < 0.35
        ? this.send('command', seq, payload)
        : roll < 0.55
          ? this.send('event', seq, payload)
          : roll < 0.65
            ? this.request(payload)
            : this.features.next(seq);
    this.inFlight.add(op);
    void op.finally(() => this.inFlight.delete(op));
  }

  private async send(kind: Kind, seq: number, payload: Payload): Promise<void> {
    const id = `${label}-${kind === 'command' ? 'c' : 'e'}${seq}`;
    const sentAt = Date.now();
    try {
      if (kind === 'command') await this.client.send(n.commands, payload, { messageId: id });
      else await this.client.publish(n.exchange, n.routingKey, payload, { messageId: id });
      report().confirmed.push({ kind, id, sentAt, confirmedAt: Date.now() });
    } catch (error) {
      report().rejected.push({ kind, id, sentAt, error: errorName(error) });
    }
  }

  private async request(payload: Payload): Promise<void> {
    try {
      await this.client.request(n.rpc, payload, { timeoutMs: 5000 });
      report().requests.answered++;
    } catch (error) {
      const name = errorName(error);
      report().requests.failed[name] = (report().requests.failed[name] ?? 0) + 1;
    }
  }
}

async function main(): Promise<void> {
  const app: INestApplicationContext = await NestFactory.createApplicationContext(SoakInstanceModule, { logger: ['error', 'warn'] });
  await app.init();
  const client = app.get(RpcClient);
  const producer = new Producer(client, new FeatureProducer(prefix, label, client, app.get(Outbox), stores.pool, delays));
  const flusher = setInterval(() => void flush(), FLUSH_MS);
  let stopping: Promise<void> | undefined;

  const shutdown = () =>
    (stopping ??= (async () => {
      await producer.stop();
      await app.close();
      await stores.close();
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
        () => count(report().missingExchange, 'confirmed'),
        (error: unknown) => count(report().missingExchange, errorName(error)),
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
