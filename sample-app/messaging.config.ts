import type { MessagingOptions } from '../lib';
import { PostgresIdempotencyStore } from '../lib/idempotency';
import type { AppConfig } from './config';
import type { OrdersDatabase } from './database.module';
import { API_SENDS, WORKER_SENDS } from './published-messages';
import { queueRenames } from './queues';

/** MessagingModule options from the app's config and database (the forRootAsync factory). */
export function messagingOptions(config: AppConfig, database?: OrdersDatabase): MessagingOptions {
  const pool = database?.pool;
  return {
    // With PostgreSQL: the outbox that announces saved orders, and idempotent handlers that
    // remember what they handled across every worker. Without: handlers remember per process.
    ...(pool ? { outbox: { pool }, idempotency: { store: new PostgresIdempotencyStore(pool) } } : {}),
    uri: config.amqpUrl,
    // The code says 'orders.place'; on the broker it is '<QUEUE_PREFIX>orders.place'.
    ...queueRenames(config.queuePrefix),
    serviceName: config.serviceName,
    prefetch: config.prefetch,
    shutdownTimeoutMs: config.shutdownTimeoutMs,
    rpcTimeoutMs: 5_000,
    // messaging_* metrics in prom-client's default registry, served at GET /metrics.
    metrics: { prometheus: true },
    // Handlers without a policy of their own: 3 tries, 1 s then 5 s apart, then the dead-letter queue.
    retry: { attempts: 3, delaysMs: [1_000, 5_000] },
    // In containers the app may start before RabbitMQ: wait for it instead of failing after 15 s.
    ...(config.waitForBroker ? { reconnect: { startupTimeoutMs: Infinity } } : {}),
    // The AsyncAPI document (AsyncApiDocument, `npm run asyncapi`): its title, and what this role sends.
    asyncApi: {
      info: { title: 'Orders (nestjs-messaging sample)', description: 'Orders placed over HTTP, fulfilled, priced and billed by workers.' },
      publishes: [...(config.role === 'worker' ? [] : API_SENDS), ...(config.role === 'api' ? [] : WORKER_SENDS)],
    },
  };
}
