import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type INestApplication, type INestApplicationContext, Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Pool, PoolConfig } from 'pg';
import {
  InvalidArgumentError,
  MessageHandler,
  MessagingConfigError,
  Outbox,
  type MessageContext,
  type MessagingOptions,
  type OutboxOptions,
} from '../../lib';
import { resolveOptions } from '../../lib/messaging.options';
import type { Message } from '../../lib/transport/transport.interface';
import { appModule, appsUnderTest, startApp, testLogger } from '../support/app';
import { AMQP_URL, Broker, rabbitmqctl, unique, waitFor } from '../support/broker';
import { listConnections } from '../support/rabbitmq-admin';
import { TcpProxy } from '../support/tcp-proxy';
import { DATABASE_URL, pgPool, testPools, transaction, uniqueTable } from './databases';

/**
 * The transactional outbox on PostgreSQL and RabbitMQ. Each test has its own table (dropped
 * after it), its own `t-` queues and exchanges, and its own pools (ended after it).
 */
describe('Outbox', () => {
  const apps = appsUnderTest();
  let broker: Broker;
  let table: string;
  const pools = testPools();
  let admin: Pool;

  beforeAll(() => (admin = pgPool()));
  afterAll(() => admin.end());

  beforeEach(async () => {
    broker = await Broker.open();
    table = uniqueTable('outbox');
  });

  afterEach(async () => {
    await apps.closeAll();
    await pools.endAll();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await broker.cleanup();
  });

  const pool = (config: PoolConfig = {}): Pool => pools.open(config);

  /** An app whose outbox writes to this test's table; its relay reconnects and retries fast. */
  function outboxApp(
    outbox: Partial<OutboxOptions> & Pick<OutboxOptions, 'pool'>,
    options: Partial<MessagingOptions> = {},
    providers: unknown[] = [],
  ) {
    return appModule(
      { reconnect: { initialDelayMs: 50, maxDelayMs: 200 }, ...options, outbox: { table, ...outbox } },
      { providers: providers as never[] },
    );
  }

  async function rows(): Promise<Array<{ message_id: string; sent: boolean; attempts: number; last_error: string | null }>> {
    const result = await admin.query(`SELECT message_id, sent_at IS NOT NULL AS sent, attempts, last_error FROM ${table} ORDER BY id`);
    return result.rows;
  }

  /** A queue of this test, declared, that collects what arrives in `received` (ack-less). */
  async function tap(name = unique('outbox-tap')): Promise<{ queue: string; received: Message[] }> {
    const queue = broker.queue(name, []);
    await broker.channel.assertQueue(queue);
    const received: Message[] = [];
    const channel = await broker.connection.createChannel();
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return { queue, received };
  }

  const bodyOf = (message: Message) => JSON.parse(message.content.toString());

  it('publishes what a transaction committed, in order and with the ids send returned; a rolled-back transaction sends nothing (woken by NOTIFY)', async () => {
    const { queue, received } = await tap();
    const writes = pool();
    // No poll in the test's time: only the writers' notifications wake the relay.
    const app = await apps.start(outboxApp({ pool: writes, pollIntervalMs: 60_000 }));
    const outbox = app.get(Outbox);
    await transaction(writes, async (client) => void (await outbox.send(client, queue, { n: -1 })), 'ROLLBACK');
    const ids: string[] = [];
    await transaction(writes, async (client) => {
      for (let n = 0; n < 50; n++) ids.push(await outbox.send(client, queue, { n }));
    });
    await waitFor(() => received.length >= 50, 'the 50 committed messages', 5_000);
    expect(received.map((message) => bodyOf(message).n)).toEqual(Array.from({ length: 50 }, (_, n) => n));
    expect(received.map((message) => message.properties.messageId)).toEqual(ids);
    expect(received[0].properties.headers).toMatchObject({ 'x-origin': 'nestjs-messaging', 'x-request-id': expect.any(String) });
    await waitFor(async () => (await rows()).every((row) => row.sent), 'the rows to be marked sent');
    expect((await rows()).map((row) => row.message_id)).toEqual(ids);
    await sleep(100);
    expect(received).toHaveLength(50);
  });

  it('polls for rows that came without a notification', async () => {
    const { queue, received } = await tap();
    const listenerName = uniqueTable('listener');
    await apps.start(outboxApp({ pool: pool({ application_name: listenerName }), pollIntervalMs: 100 }));
    // Once it listens, the relay has made its first look: only the poll can find the row now. (Its
    // listening connection shows LISTEN, then the ping each poll sends on it.)
    await waitFor(
      async () =>
        (
          await admin.query(`SELECT 1 FROM pg_stat_activity WHERE application_name = $1 AND query IN ($2, 'SELECT 1')`, [
            listenerName,
            `LISTEN "${table}"`,
          ])
        ).rows.length === 1,
      'the relay to listen',
    );
    await sleep(50);
    await admin.query(`INSERT INTO ${table} (message_id, exchange, routing_key, content, properties) VALUES ($1, '', $2, $3, $4::jsonb)`, [
      'polled',
      queue,
      Buffer.from('{"n":1}'),
      JSON.stringify({ messageId: 'polled', contentType: 'application/json', mandatory: true }),
    ]);
    await waitFor(() => received.length === 1, 'the row written without NOTIFY', 3_000);
    expect(received[0].properties.messageId).toBe('polled');
  });

  it("publishes a committed message once the broker is back after the app's publisher connection was closed", async () => {
    const { queue, received } = await tap();
    const writes = pool();
    const serviceName = unique('outbox-svc');
    const app = await apps.start(outboxApp({ pool: writes }, { serviceName, reconnect: { initialDelayMs: 300, maxDelayMs: 300 } }));
    const outbox = app.get(Outbox);
    const connection = (await listConnections()).find((c) => c.name === `${serviceName}:publisher`);
    expect(connection).toBeDefined();
    await rabbitmqctl('close_connection', connection!.pid, 'test: forced close of one publisher connection');
    let id = '';
    await transaction(writes, async (client) => void (id = await outbox.send(client, queue, { n: 1 })));
    await waitFor(() => received.length >= 1, 'the message after the reconnect', 5_000);
    await waitFor(async () => (await rows())[0].sent, 'the row to be marked sent');
    await sleep(200);
    expect(received.map((message) => message.properties.messageId)).toEqual([id]);
  });

  it('retries with back-off while the broker is unreachable, then publishes', async () => {
    const proxy = await TcpProxy.start();
    try {
      const { queue, received } = await tap();
      const writes = pool();
      const app = await apps.start(
        outboxApp(
          { pool: writes, pollIntervalMs: 50 },
          { uri: proxy.url(), publishTimeoutMs: 300, reconnect: { initialDelayMs: 100, maxDelayMs: 200 } },
        ),
      );
      proxy.cut();
      await transaction(writes, async (client) => void (await app.get(Outbox).send(client, queue, { n: 1 })));
      await waitFor(async () => (await rows())[0].attempts >= 2, 'two failed tries', 5_000);
      expect(received).toHaveLength(0);
      proxy.resume();
      await waitFor(() => received.length === 1, 'the message once the broker is reachable', 5_000);
      await waitFor(async () => (await rows())[0].sent, 'the row to be marked sent');
      expect((await rows())[0].last_error).toMatch(/^PublishTimeoutError/);
    } finally {
      await apps.closeAll();
      await proxy.close();
    }
  });

  it('a row that cannot be published yet (no such queue) waits with back-off and holds nothing else up', async () => {
    const { queue, received } = await tap();
    const later = broker.queue(unique('outbox-later'), []);
    const writes = pool();
    const app = await apps.start(outboxApp({ pool: writes, pollIntervalMs: 50 }));
    const outbox = app.get(Outbox);
    await transaction(writes, async (client) => {
      await outbox.send(client, later, { n: 'later' });
      await outbox.send(client, queue, { n: 'now' });
    });
    await waitFor(() => received.length === 1, 'the routable message', 3_000);
    await waitFor(async () => (await rows())[0].attempts >= 1, 'a failed try of the other');
    expect((await rows())[0]).toMatchObject({ sent: false, last_error: expect.stringMatching(/^UnroutableError/) });
    await broker.channel.assertQueue(later);
    await waitFor(async () => (await broker.depth(later)) === 1, 'the message once its queue exists', 5_000);
  });

  it('a relay killed between publishing and marking: the rows are published again, and an idempotent consumer handles each once', async () => {
    const exchange = broker.exchange(unique('outbox-events'));
    const handled = broker.queue(unique('outbox-handled'));
    const runs: string[] = [];
    @Injectable()
    class IdempotentConsumer {
      @MessageHandler({ queue: handled, exchange, routingKey: 'order.created', idempotent: true })
      handle(_: unknown, context: MessageContext): void {
        runs.push(context.messageId);
      }
    }
    await apps.start(appModule({}, { providers: [IdempotentConsumer] }));
    const { queue: copies, received } = await tap();
    await broker.channel.bindQueue(copies, exchange, 'order.created');

    // A writer without a relay creates the table and commits three events.
    const writes = pool();
    const writer = await apps.start(outboxApp({ pool: writes, relay: false }));
    const ids: string[] = [];
    await transaction(writes, async (client) => {
      for (let n = 0; n < 3; n++) ids.push(await writer.get(Outbox).publish(client, exchange, 'order.created', { n }));
    });

    // Holds the relay's UPDATE (marking sent) but not its SELECT ... FOR UPDATE: it publishes, then waits.
    const blocker = await admin.connect();
    let relay: INestApplicationContext | undefined;
    try {
      await blocker.query('BEGIN');
      await blocker.query(`LOCK TABLE ${table} IN SHARE MODE`);
      const relayName = uniqueTable('relay');
      // After its transaction dies, it would try again only after 30 s: the test stops it first.
      relay = await startApp(
        outboxApp({ pool: pool({ application_name: relayName }) }, { reconnect: { initialDelayMs: 30_000, maxDelayMs: 30_000 } }),
      );
      await waitFor(() => received.length === 3 && runs.length === 3, 'the first publish of the three events');
      let waiting: number | undefined;
      await waitFor(async () => {
        const { rows: found } = await admin.query(
          `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'`,
          [relayName],
        );
        waiting = found[0]?.pid;
        return waiting !== undefined;
      }, 'the relay to wait to mark its rows sent');
      // The relay's session dies between publish and mark; then its instance goes away.
      await admin.query('SELECT pg_terminate_backend($1)', [waiting]);
      await relay.close();
      relay = undefined;
    } finally {
      await blocker.query('ROLLBACK').catch(() => undefined);
      blocker.release();
      await relay?.close();
    }
    expect((await rows()).map((row) => row.sent)).toEqual([false, false, false]);

    // Another instance's relay sends the unmarked rows again, with the same message ids.
    await apps.start(outboxApp({ pool: pool() }));
    await waitFor(() => received.length === 6, 'the second publish of the three events');
    await waitFor(async () => (await rows()).every((row) => row.sent), 'the rows to be marked sent');
    await waitFor(async () => (await broker.depth(handled)) === 0, 'the consumer to take the copies');
    await sleep(200);
    expect(received.map((message) => message.properties.messageId).sort()).toEqual([...ids, ...ids].sort());
    expect(runs.sort()).toEqual([...ids].sort());
  });

  it('two relays never publish a row twice (10,000 rows)', async () => {
    const { queue, received } = await tap();
    const first = await apps.start(outboxApp({ pool: pool(), batchSize: 200 }));
    const second = await apps.start(outboxApp({ pool: pool(), batchSize: 200 }));
    const writes = pool();
    const outbox = first.get(Outbox);
    const total = 10_000;
    for (let batch = 0; batch < total / 500; batch++) {
      await transaction(writes, async (client) => {
        for (let i = 0; i < 500; i++) await outbox.send(client, queue, { n: batch * 500 + i });
      });
    }
    await waitFor(() => received.length >= total, `${total} messages`, 30_000);
    await waitFor(
      async () => (await admin.query(`SELECT count(*)::int AS unsent FROM ${table} WHERE sent_at IS NULL`)).rows[0].unsent === 0,
      'every row marked sent',
    );
    await sleep(300);
    const ids = received.map((message) => message.properties.messageId);
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);
    const [a, b] = [first.get(Outbox).relayed, second.get(Outbox).relayed];
    expect(a + b).toBe(total);
    expect(a).toBeGreaterThan(0);
    expect(b).toBeGreaterThan(0);
  }, 60_000);

  it('shutdown lets the batch in flight finish: every row it published is marked sent', async () => {
    const { queue, received } = await tap();
    const writes = pool();
    const writer = await apps.start(outboxApp({ pool: writes, relay: false }));
    await transaction(writes, async (client) => {
      for (let n = 0; n < 3000; n++) await writer.get(Outbox).send(client, queue, { n });
    });
    const relay = await startApp(outboxApp({ pool: pool(), batchSize: 1000 }));
    await waitFor(() => received.length > 0, 'the relay to start publishing');
    await relay.close();
    await sleep(300);
    const {
      rows: [counts],
    } = await admin.query(`SELECT count(*) FILTER (WHERE sent_at IS NOT NULL)::int AS sent FROM ${table}`);
    expect(counts.sent).toBeGreaterThan(0);
    expect(new Set(received.map((message) => message.properties.messageId)).size).toBe(counts.sent);
  });

  it('deletes sent rows after the retention period', async () => {
    const { queue, received } = await tap();
    const writes = pool();
    const app = await apps.start(outboxApp({ pool: writes, pollIntervalMs: 50, retentionMs: 200 }));
    await transaction(writes, async (client) => {
      for (let n = 0; n < 5; n++) await app.get(Outbox).send(client, queue, { n });
    });
    await waitFor(() => received.length === 5, 'the messages');
    expect(await rows()).toHaveLength(5);
    await waitFor(async () => (await rows()).length === 0, 'the sent rows to be deleted', 3_000);
  });

  it('refuses a wrong option or call, naming it', async () => {
    const somePool = pool();
    expect(() => resolveOptions({ uri: 'amqp://x', outbox: { pool: somePool, batchsize: 5 } as never })).toThrow(
      '"outbox" has no "batchsize"',
    );
    expect(() => resolveOptions({ uri: 'amqp://x', outbox: { pool: somePool, table: 'no-dashes' } })).toThrow('"outbox.table"');
    expect(() => resolveOptions({ uri: 'amqp://x', outbox: { pool: {} as never } })).toThrow('"outbox.pool"');
    expect(() => resolveOptions({ uri: 'amqp://x', outbox: { pool: somePool, batchSize: 0 } })).toThrow(MessagingConfigError);
    expect(() => resolveOptions({ uri: 'amqp://x', outbox: { pool: somePool, queryTimeoutMs: 0 } })).toThrow('"outbox.queryTimeoutMs"');

    const withoutOutbox = await apps.start(appModule({}));
    await expect(withoutOutbox.get(Outbox).send(somePool, 'q', {})).rejects.toThrow(MessagingConfigError);
    const app = await apps.start(outboxApp({ pool: somePool }));
    await expect(app.get(Outbox).send(somePool, 'q', {}, { delayMs: 10 } as never)).rejects.toThrow(InvalidArgumentError);
    await expect(app.get(Outbox).send(somePool, 'q', {}, { priority: 300 })).rejects.toThrow(InvalidArgumentError);
    expect(await rows()).toHaveLength(0);
  });
});

describe('the sample app with DATABASE_URL', () => {
  it('saves orders in PostgreSQL, announces order.created through the outbox, and billing opens one invoice per order however often it arrives', async () => {
    const admin = pgPool();
    const schema = uniqueTable('sample');
    const prefix = `${unique('sample-db')}.`;
    const broker = await Broker.open();
    let app: INestApplication | undefined;
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      const { AppModule } = await import('../../sample-app/app.module');
      const { loadConfig } = await import('../../sample-app/config');
      const { FulfilmentService } = await import('../../sample-app/worker/fulfilment.service');
      const { Invoices } = await import('../../sample-app/worker/invoices');
      const config = loadConfig({
        ROLE: 'all',
        AMQP_URL: AMQP_URL,
        QUEUE_PREFIX: prefix,
        PORT: '0',
        WORK_MS: '1',
        // Every table of the app (orders, the outbox, the idempotency store) in this test's schema.
        DATABASE_URL: `${DATABASE_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      });
      app = await NestFactory.create(AppModule.register(config), { logger: testLogger(), abortOnError: false });
      await app.listen(0, '127.0.0.1');
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
      const response = await fetch(`${base}/orders`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"sku":"GADGET","quantity":2}',
      });
      const { orderId } = (await response.json()) as { orderId: string };
      const invoices = app.get(Invoices);
      await waitFor(
        () => app!.get(FulfilmentService).find(orderId) !== undefined && invoices.find(orderId) !== undefined,
        'the order and its invoice',
      );
      expect(invoices.find(orderId)).toMatchObject({ orderId, total: 24 });
      const { rows: saved } = await admin.query(`SELECT sku, quantity FROM ${schema}.orders WHERE order_id = $1`, [orderId]);
      expect(saved).toEqual([{ sku: 'GADGET', quantity: 2 }]);
      await waitFor(
        async () => (await admin.query(`SELECT 1 FROM ${schema}.messaging_outbox WHERE sent_at IS NOT NULL`)).rows.length === 1,
        'the event marked sent',
      );
      const { rows: events } = await admin.query(
        `SELECT message_id, routing_key, sent_at IS NOT NULL AS sent FROM ${schema}.messaging_outbox`,
      );
      expect(events).toEqual([{ message_id: invoices.find(orderId)!.eventId, routing_key: 'order.created', sent: true }]);

      // The relay sends the event again (as after a crash before marking it): billing opens nothing twice.
      await admin.query(`UPDATE ${schema}.messaging_outbox SET sent_at = NULL`);
      await waitFor(
        async () => (await admin.query(`SELECT 1 FROM ${schema}.messaging_outbox WHERE sent_at IS NULL`)).rows.length === 0,
        'the event sent again',
      );
      await waitFor(async () => (await broker.depth(`${prefix}billing.order-created`)) === 0, 'billing to take the copy');
      await sleep(200);
      expect(invoices.opened).toBe(1);
    } finally {
      await app?.close();
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
      await broker.cleanup(prefix);
    }
  });
});
