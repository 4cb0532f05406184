import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Parser } from '@asyncapi/parser';
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IsIn, IsInt, IsString, Min } from 'class-validator';
import {
  AsyncApiDocument,
  MessageHandler,
  MessagingConfigError,
  MessagingModule,
  Payload,
  writeAsyncApiDocument,
  type MessageContext,
} from '../../lib';
import { appModule, appsUnderTest, testLogger } from '../support/app';
import { AMQP_URL, Broker, BROKER_URL, ON_MEMORY, unique } from '../support/broker';

type Doc = Record<string, any>;

/**
 * What the official parser may say of a document this module makes, and why it is accepted:
 * - asyncapi-latest-version (information): AsyncAPI 3.1 exists; the document is 3.0.0 on purpose,
 *   the version most tools read.
 * Nothing else: no error, and no warning of any kind.
 */
const ACCEPTED = ['asyncapi-latest-version'];

async function diagnosticsOf(doc: Doc): Promise<Array<{ code: string | number; severity: number; message: string }>> {
  return (await new Parser().validate(doc as Parameters<Parser['validate']>[0])).map(({ code, severity, message }) => ({
    code,
    severity,
    message,
  }));
}

const channelsOf = (doc: Doc) => Object.values(doc.channels) as Doc[];

describe('AsyncAPI document of the sample app', () => {
  const prefix = `${unique('asyncapi')}.`;
  let app: INestApplicationContext;
  let broker: Broker;
  let doc: Doc;

  beforeAll(async () => {
    broker = await Broker.open();
    const { AppModule } = await import('../../sample-app/app.module');
    const { loadConfig } = await import('../../sample-app/config');
    const config = loadConfig({ ROLE: 'all', AMQP_URL: BROKER_URL, QUEUE_PREFIX: prefix, SERVICE_NAME: 'asyncapi-test' });
    app = await NestFactory.createApplicationContext(AppModule.register(config), { logger: testLogger(), abortOnError: false });
    await app.init();
    doc = app.get(AsyncApiDocument).document();
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup(prefix);
  });

  it('is valid AsyncAPI 3.0 to the official parser: no error, no warning', async () => {
    const diagnostics = await diagnosticsOf(doc);
    expect(diagnostics.filter((d) => !ACCEPTED.includes(String(d.code)))).toEqual([]);
    expect(doc).toMatchObject({ asyncapi: '3.0.0', info: { title: 'Orders (nestjs-messaging sample)', version: expect.any(String) } });
  });

  it("addresses each handler's queue and each exchange by its name on the broker (after the sample's rename map)", () => {
    const addresses = channelsOf(doc).map((channel) => channel.address);
    for (const name of [
      'orders.place',
      'pricing.quote',
      'billing.issue-receipt',
      'orders.receipts',
      'billing.order-created',
      'orders',
      'inventory',
    ]) {
      expect(addresses).toContain(`${prefix}${name}`);
    }
    expect(addresses).toContain(`${prefix}inventory.asyncapi-test.broadcast.{instance}`);
    // The module's own dead-letter and retry queues are named by the operations, not channels.
    expect(addresses.filter((address) => /\.(dlq|retry\.\d+ms)$/.test(address ?? ''))).toEqual([]);
    expect(doc.operations['OrdersHandlers.place']).toMatchObject({
      'x-retry': {
        attempts: 3,
        delaysMs: [500, 2000],
        queues: [`${prefix}orders.place.retry.500ms`, `${prefix}orders.place.retry.2000ms`],
      },
      'x-dead-letter-queue': `${prefix}orders.place.dlq`,
    });
  });

  it('describes a payload class from its class-validator rules', () => {
    const placeOrder = doc.channels[`${prefix}orders.place`].messages.PlaceOrder;
    expect(placeOrder).toEqual({ $ref: '#/components/messages/PlaceOrder' });
    expect(doc.components.messages.PlaceOrder.payload).toEqual({ $ref: '#/components/schemas/PlaceOrder' });
    expect(doc.components.schemas.PlaceOrder).toEqual({
      type: 'object',
      properties: {
        orderId: { type: 'string', minLength: 1, maxLength: 80 },
        sku: { type: 'string', minLength: 1, maxLength: 64 },
        quantity: { type: 'integer', minimum: 1 },
      },
      required: ['orderId', 'sku', 'quantity'],
    });
  });

  it("gives a handler that answers a reply to the request's replyTo, and none to one that answers nothing", () => {
    expect(doc.operations['PricingHandler.quote'].reply).toMatchObject({
      address: { location: '$message.header#/replyTo' },
      channel: { $ref: '#/channels/PricingHandler.quote.reply' },
    });
    expect(doc.channels['PricingHandler.quote.reply'].address).toBeNull();
    expect(doc.operations['OrdersHandlers.place'].reply).toBeUndefined();
    expect(doc.operations['NotificationsHandler.onShipped'].reply).toBeUndefined();
  });

  it('puts what the app sends (asyncApi.publishes) on the channel of its exchange or queue', () => {
    expect(doc.operations[`send.${prefix}orders.order.shipped`]).toMatchObject({
      action: 'send',
      channel: { $ref: `#/channels/exchange.${prefix}orders` },
      messages: [{ $ref: `#/channels/exchange.${prefix}orders/messages/OrderShipped` }],
      bindings: { amqp: { cc: ['order.shipped'], mandatory: false } },
    });
    expect(Object.keys(doc.channels[`exchange.${prefix}orders`].messages)).toEqual(['OrderCreated', 'OrderShipped']);
  });

  it('names the broker without its credentials', () => {
    const url = new URL(BROKER_URL);
    expect(doc.servers.default).toMatchObject(ON_MEMORY ? { protocol: 'memory' } : { host: url.host, protocol: 'amqp' });
    if (!ON_MEMORY) expect(JSON.stringify(doc)).not.toContain(`${url.username}:${url.password}`);
  });

  it('returns a fresh copy on each call, and writes it to a file', async () => {
    const first = app.get(AsyncApiDocument).document() as Doc;
    first.info.title = 'changed';
    expect((app.get(AsyncApiDocument).document() as Doc).info.title).toBe('Orders (nestjs-messaging sample)');

    const dir = await mkdtemp(join(tmpdir(), 'asyncapi-'));
    try {
      await writeAsyncApiDocument(app, join(dir, 'docs', 'asyncapi.json'));
      expect(JSON.parse(await readFile(join(dir, 'docs', 'asyncapi.json'), 'utf8'))).toEqual(doc);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('AsyncAPI document of an app', () => {
  const apps = appsUnderTest();
  let broker: Broker;

  beforeAll(async () => {
    broker = await Broker.open();
  });

  afterAll(async () => {
    await broker.cleanup();
  });

  it('describes a handler by its schema option, over the class of its payload', async () => {
    const [audits, refunds] = [broker.queue(unique('audits')), broker.queue(unique('refunds'))];

    class Refund {
      @IsString()
      orderId!: string;

      @IsInt()
      @Min(1)
      cents!: number;

      @IsIn(['eur', 'usd'])
      currency!: string;
    }

    @Injectable()
    class Handlers {
      @MessageHandler({ queue: audits, schema: { type: 'object', required: ['event'], properties: { event: { type: 'string' } } } })
      audit(@Payload() _event: Refund): void {}

      @MessageHandler({ queue: refunds, reply: { type: 'boolean' } })
      async refund(@Payload() _refund: Refund, _context: MessageContext): Promise<boolean> {
        return true;
      }
    }

    const app = await apps.start(appModule({}, { providers: [Handlers] }));
    const doc = app.get(AsyncApiDocument).document() as Doc;
    expect((await diagnosticsOf(doc)).map((d) => d.code)).toEqual(ACCEPTED);
    const [auditMessage] = Object.values(doc.channels[audits].messages) as Doc[];
    expect(doc.components.messages[auditMessage.$ref.split('/').pop()].payload).toEqual({
      type: 'object',
      required: ['event'],
      properties: { event: { type: 'string' } },
    });
    expect(doc.components.schemas.Refund).toEqual({
      type: 'object',
      properties: {
        orderId: { type: 'string' },
        cents: { type: 'integer', minimum: 1 },
        currency: { type: 'string', enum: ['eur', 'usd'] },
      },
      required: ['orderId', 'cents', 'currency'],
    });
    expect(doc.operations['Handlers.refund'].reply.messages).toHaveLength(2);
  });

  it('covers every connection of the app, each a server that its channels name', async () => {
    const [orders, stats] = [broker.queue(unique('orders')), broker.queue(unique('stats'))];

    @Injectable()
    class Handlers {
      @MessageHandler(orders)
      order(): void {}

      @MessageHandler({ queue: stats, connection: 'reports' })
      stat(): void {}
    }

    const reportsUri = ON_MEMORY ? 'memory://' : AMQP_URL;
    const app = await apps.start(
      appModule({}, { imports: [MessagingModule.forRoot({ name: 'reports', uri: reportsUri })], providers: [Handlers] }),
    );
    const doc = app.get(AsyncApiDocument).document() as Doc;
    expect(Object.keys(doc.servers)).toEqual(['default', 'reports']);
    expect(doc.channels[orders].servers).toEqual([{ $ref: '#/servers/default' }]);
    expect(doc.channels[`reports.${stats}`]).toMatchObject({ address: stats, servers: [{ $ref: '#/servers/reports' }] });
    expect((await diagnosticsOf(doc)).map((d) => d.code)).toEqual(ACCEPTED);
  });

  it('describes no handler of a send-only connection (registerHandlers: false): it receives nothing', async () => {
    @Injectable()
    class Handlers {
      @MessageHandler(unique('unused'))
      take(): void {}
    }

    const app = await apps.start(appModule({ registerHandlers: false }, { providers: [Handlers] }));
    const doc = app.get(AsyncApiDocument).document() as Doc;
    expect(doc.operations).toEqual({});
    expect(doc.channels).toEqual({});
  });

  it('fails startup on a wrong asyncApi option, naming it and what it takes', async () => {
    const started = apps.start(appModule({ asyncApi: { publishes: [{ routingKey: 'order.placed' }] } }));
    await expect(started).rejects.toThrow(MessagingConfigError);
    await expect(started).rejects.toThrow('MessagingModule option "asyncApi.publishes[0]" must name an "exchange"');
  });
});
