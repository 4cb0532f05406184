import { type INestApplicationContext, Injectable, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Pool, PoolConfig } from 'pg';
import { MessageHandler, Outbox, type MessagingOptions, type OutboxOptions } from '../../lib';
import type { Message } from '../../lib/transport/transport.interface';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
import { TcpProxy } from '../support/tcp-proxy';
import { pgPool, testPools, transaction, uniqueTable } from './databases';

/**
 * The outbox under faults of PostgreSQL's network: the app's pool reaches PostgreSQL through a
 * TcpProxy of the test (PostgreSQL itself is never stopped, and only the backends of this test's
 * app, found by its application_name, are ever looked at). Each test has its own table, queues
 * and pools, dropped after it.
 */
describe('Outbox under faults', () => {
  const apps = appsUnderTest();
  let broker: Broker;
  let table: string;
  const pools = testPools();
  let proxy: TcpProxy | undefined;
  let admin: Pool;

  beforeAll(() => (admin = pgPool()));
  afterAll(() => admin.end());

  /** Apps started with a CaptureLogger, closed after each test. */
  const logged: INestApplicationContext[] = [];
  async function startLogged(module: Type<unknown>, logger: CaptureLogger): Promise<INestApplicationContext> {
    const app = await NestFactory.createApplicationContext(module, { logger, abortOnError: false });
    logged.push(app);
    await app.init();
    return app;
  }

  beforeEach(async () => {
    broker = await Broker.open();
    table = uniqueTable('outbox_faults');
  });

  afterEach(async () => {
    proxy?.resume();
    await apps.closeAll();
    for (const app of logged.splice(0)) await app.close();
    await proxy?.close();
    proxy = undefined;
    await pools.endAll();
    await admin.query(`DROP TABLE IF EXISTS ${table}`);
    await broker.cleanup();
  });

  const pool = (config: PoolConfig = {}): Pool => pools.open(config);

  /** A pool whose connections go through a proxy of this test. */
  async function proxiedPool(): Promise<Pool> {
    proxy = await TcpProxy.start(5432);
    return pool({ connectionString: `postgres://postgres@127.0.0.1:${proxy.port}/test` });
  }

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

  async function unsent(): Promise<number> {
    return (await admin.query(`SELECT count(*)::int AS n FROM ${table} WHERE sent_at IS NULL`)).rows[0].n;
  }

  /** A queue of this test that collects what arrives in `received`. */
  async function tap(): Promise<{ queue: string; received: Message[] }> {
    const queue = broker.queue(unique('outbox-faults'), []);
    await broker.channel.assertQueue(queue);
    const received: Message[] = [];
    const channel = await broker.connection.createChannel();
    await channel.consume(queue, (message) => message && received.push(message), { noAck: true });
    return { queue, received };
  }

  /** Commits one message and waits for the relay to publish it: the relay is up, its connections open. */
  async function relayWorks(app: INestApplicationContext, writes: Pool): Promise<void> {
    const { queue, received } = await tap();
    await transaction(writes, async (client) => void (await app.get(Outbox).send(client, queue, { warmUp: true })));
    await waitFor(() => received.length === 1, 'the relay to publish a first message');
  }

  describe('a half-open PostgreSQL connection (case 48)', () => {
    it('the query in flight is lost with the network: once it is back, rows committed meanwhile are relayed without a restart', async () => {
      const { queue, received } = await tap();
      const relayPool = await proxiedPool();
      const writes = pool();
      const app = await apps.start(outboxApp({ pool: relayPool, pollIntervalMs: 100, queryTimeoutMs: 300 }));
      await relayWorks(app, writes);
      proxy!.stall();
      await transaction(writes, async (client) => {
        for (let n = 0; n < 3; n++) await app.get(Outbox).send(client, queue, { n });
      });
      // The poll has sent the relay's next query into the stalled connection.
      await waitFor(() => proxy!.heldFromClients > 0, 'a relay query to be held');
      // The network comes back without it: that query never arrives, its answer never comes.
      proxy!.drop();
      const recovered = Date.now();
      await waitFor(() => received.length === 3, 'the rows committed during the stall', 5_000);
      await waitFor(async () => (await unsent()) === 0, 'the rows to be marked sent');
      console.log(`relayed ${Date.now() - recovered} ms after the network came back`);
    });

    it('shutdown is bounded while PostgreSQL is stalled: no wait on UNLISTEN or on the batch in flight', async () => {
      const relayPool = await proxiedPool();
      const app = await apps.start(outboxApp({ pool: relayPool, pollIntervalMs: 100, queryTimeoutMs: 300 }, { shutdownTimeoutMs: 5_000 }));
      await relayWorks(app, pool());
      proxy!.stall();
      // The poll has sent a batch's first statement, which gets no answer.
      await waitFor(() => proxy!.heldFromClients > 0, 'a relay query to be held');
      const started = Date.now();
      const closed = app.close().then(() => Date.now() - started);
      const took = await Promise.race([
        closed,
        new Promise<string>((resolve) => setTimeout(() => resolve('still closing after 8 s'), 8_000)),
      ]);
      console.log(`close() with PostgreSQL stalled: ${took} ms`);
      // The batch's statement gives up after queryTimeoutMs (300), well before shutdownTimeoutMs.
      expect(took).toBeLessThan(4_000);
    });
  });

  describe('a row whose exchange is missing (case 59)', () => {
    it('is parked with its reason, a warning and a count; the publish channel is closed over it once, and other messages go on', async () => {
      const { queue, received } = await tap();
      const writes = pool();
      const logger = new CaptureLogger();
      const app = await startLogged(outboxApp({ pool: writes, pollIntervalMs: 50 }), logger);
      const outbox = app.get(Outbox);
      // Tracked for clean-up, declared only at the end.
      const missing = broker.exchange(unique('outbox-missing'));
      await transaction(writes, async (client) => {
        await outbox.publish(client, missing, 'nowhere', { n: 'parked' });
        await outbox.send(client, queue, { n: 0 });
      });
      const parkedRows = async () =>
        (await admin.query(`SELECT attempts, last_error FROM ${table} WHERE sent_at IS NULL AND available_at = 'infinity'`)).rows;
      await waitFor(async () => (await parkedRows()).length === 1, 'the row to be parked', 5_000);
      // One message after another, each waited for: several of the old back-offs (50 to 200 ms) long.
      for (let n = 1; n <= 10; n++) {
        await transaction(writes, async (client) => void (await outbox.send(client, queue, { n })));
        await waitFor(() => received.length === n + 1, `message ${n}`);
      }
      expect(await parkedRows()).toEqual([{ attempts: 1, last_error: expect.stringMatching(/^ExchangeNotFoundError: .*outbox-missing/) }]);
      expect(logger.find('channel was closed by RabbitMQ')).toHaveLength(1);
      expect(logger.find('messages parked', 'warn')).toHaveLength(1);
      expect(outbox.parked).toBe(1);

      // Once the exchange exists, the statement the warning names sends the row again.
      await broker.channel.assertExchange(missing, 'topic', { durable: false, autoDelete: false });
      await broker.channel.bindQueue(queue, missing, 'nowhere');
      await admin.query(`UPDATE ${table} SET available_at = now() WHERE sent_at IS NULL AND available_at = 'infinity'`);
      await waitFor(
        () => received.some((message) => JSON.parse(message.content.toString()).n === 'parked'),
        'the parked message, sent again',
      );
      await waitFor(async () => (await unsent()) === 0, 'every row to be marked sent');
    });
  });

  describe('header values a table cannot hold as they are (case 63)', () => {
    it('NUL characters inherited from the handled message, Buffers and Dates: every insert of the handler works and the relay publishes them as send would', async () => {
      const { queue: out, received } = await tap();
      const inbound = broker.queue(unique('outbox-in'));
      const writes = pool();
      const failures: unknown[] = [];
      const when = new Date('2026-01-02T03:04:05.678Z');
      @Injectable()
      class Forwarder {
        constructor(private readonly outbox: Outbox) {}

        @MessageHandler({ queue: inbound, retry: { attempts: 1 } })
        async handle(): Promise<void> {
          try {
            await transaction(writes, async (client) => {
              // Buffer and Date are typed out of `headers`, but JavaScript callers can pass them (and send takes them).
              const headers = { bytes: Buffer.from([0, 1, 255]), when, nul: 'a\u0000b', lone: 'x\ud800y' } as never;
              await this.outbox.send(client, out, { n: 1 }, { headers });
              await this.outbox.send(client, out, { n: 2 });
            });
          } catch (error) {
            failures.push(error);
            throw error;
          }
        }
      }
      await apps.start(outboxApp({ pool: writes, pollIntervalMs: 50 }, {}, [Forwarder]));
      broker.channel.publish('', inbound, Buffer.from('{}'), {
        contentType: 'application/json',
        messageId: 'in\u0000id',
        headers: { 'x-request-id': 'req-63', 'x-track-note': 'a\u0000b' },
      });
      await waitFor(() => received.length === 2 || failures.length > 0, 'the two messages the handler wrote', 5_000);
      expect(failures).toEqual([]);
      const [first, second] = received;
      expect(first.properties.headers).toMatchObject({
        'x-track-note': 'a\u0000b',
        'x-causation-id': 'in\u0000id',
        'x-request-id': 'req-63',
        bytes: Buffer.from([0, 1, 255]),
        nul: 'a\u0000b',
        // What amqplib makes of them on any publish: a lone surrogate as U+FFFD, a Date as an empty table.
        lone: 'x\ufffdy',
        when: {},
      });
      expect(second.properties.headers).toMatchObject({ 'x-track-note': 'a\u0000b', 'x-causation-id': 'in\u0000id' });
      await waitFor(async () => (await unsent()) === 0, 'the rows to be marked sent');
    });

    it('a message id, queue or routing key with a NUL character (a text column cannot hold it) is refused at send, naming it', async () => {
      const writes = pool();
      const app = await apps.start(outboxApp({ pool: writes, relay: false }));
      const outbox = app.get(Outbox);
      await transaction(writes, async (client) => {
        await expect(outbox.send(client, 'q', {}, { messageId: 'a\u0000b' })).rejects.toThrow(/"messageId" must be a string without NUL/);
        await expect(outbox.publish(client, 'ex', 'a\u0000b', {})).rejects.toThrow(/"routingKey" must be a string without NUL/);
        // Nothing reached the transaction: it goes on.
        await outbox.send(client, 'q', { fine: true });
      });
      expect(await unsent()).toBe(1);
    });
  });
});
