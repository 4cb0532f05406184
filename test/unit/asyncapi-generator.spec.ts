import { Parser } from '@asyncapi/parser';
import { IsInt, IsString, Min } from 'class-validator';
import type { MessageHandlerOptions, MessagingOptions } from '../../lib';
import { asyncApiDocument, type DocumentedHandler, INSTANCE_ID } from '../../lib/asyncapi/asyncapi-generator';
import { loadSchemaConverter, PayloadSchemas } from '../../lib/asyncapi/payload-schemas';
import { resolveOptions } from '../../lib/messaging.options';
import { defineHandler } from '../../lib/topology/handler-definition';

class OrderPlaced {
  @IsString()
  orderId!: string;

  @IsInt()
  @Min(1)
  quantity!: number;
}

type Doc = Record<string, any>;

/** One handler of the test: its options, and what its message and answer are described from. */
interface Handler {
  options: MessageHandlerOptions;
  payload?: unknown;
  reply?: { payload: unknown };
  name?: string;
}

/** The document of an app with one connection per `connections` entry and the given handlers. */
function documentOf(handlers: Handler[], connections: Array<Partial<MessagingOptions>> = [{}]): Doc {
  const resolved = connections.map((options) => resolveOptions({ uri: 'amqp://rabbit:5672', ...options }));
  const documented = handlers.map(({ options, payload, reply, name }, i): DocumentedHandler => {
    const connection = resolved.find((c) => c.name === (options.connection ?? 'default'))!;
    return {
      connection: connection.name,
      definition: defineHandler(name ?? `H.handle${i}`, options, connection, INSTANCE_ID),
      payload,
      ...(reply ? { reply } : {}),
    };
  });
  return asyncApiDocument(
    { info: { title: 't', version: '1' }, connections: resolved, handlers: documented },
    new PayloadSchemas(loadSchemaConverter()),
  );
}

const addresses = (doc: Doc) => Object.values(doc.channels).map((channel: any) => channel.address);

describe('AsyncAPI document: servers', () => {
  it.each([
    [
      'amqp://alice:s3cret@rabbit.internal:5672/orders?heartbeat=5',
      { host: 'rabbit.internal:5672', protocol: 'amqp', pathname: '/orders' },
      'orders',
    ],
    ['amqps://bob:pw@secure.example.com', { host: 'secure.example.com', protocol: 'amqps', protocolVersion: '0.9.1' }, '/'],
    ['amqp://rabbit/', { host: 'rabbit', protocol: 'amqp' }, '/'],
    ['amqp://rabbit/%2Fprod', { host: 'rabbit', pathname: '/%2Fprod', description: 'RabbitMQ, virtual host "/prod"' }, '/prod'],
    ['memory://', { host: 'default', protocol: 'memory' }, '/'],
    ['memory://billing', { host: 'billing', protocol: 'memory' }, '/'],
  ])('describes %s by host and vhost, never by its credentials or query', (uri, server, vhost) => {
    const doc = documentOf([{ options: { queue: 'q' } }], [{ uri }]);
    expect(doc.servers.default).toMatchObject(server);
    const text = JSON.stringify(doc);
    for (const secret of ['alice', 's3cret', 'bob', ':pw@', 'heartbeat']) expect(text).not.toContain(secret);
    expect(doc.channels.q.bindings.amqp.queue.vhost).toBe(vhost);
  });

  it('makes one server of a cluster, listing its nodes, and describes asyncApi.server instead of uri', () => {
    const cluster = documentOf([], [{ uri: ['amqp://u:p@a:5672', 'amqp://u:p@b:5672', 'amqp://u:p@c:5672'] }]);
    expect(Object.keys(cluster.servers)).toEqual(['default']);
    expect(cluster.servers.default).toMatchObject({ host: 'a:5672', description: expect.stringContaining('a:5672, b:5672, c:5672') });

    const ci = documentOf([], [{ uri: 'memory://', asyncApi: { server: 'amqps://deploy:key@broker.example.com/shop' } }]);
    expect(ci.servers.default).toMatchObject({ host: 'broker.example.com', protocol: 'amqps', pathname: '/shop' });
    expect(JSON.stringify(ci)).not.toMatch(/deploy|key@/);
  });

  it('has one server per connection, and each channel names the server of its connection', () => {
    const doc = documentOf(
      [{ options: { queue: 'orders' } }, { options: { queue: 'orders', connection: 'analytics' } }],
      [{}, { name: 'analytics', uri: 'amqp://stats:5672' }],
    );
    expect(Object.keys(doc.servers)).toEqual(['default', 'analytics']);
    expect(doc.channels.orders.servers).toEqual([{ $ref: '#/servers/default' }]);
    expect(doc.channels['analytics.orders']).toMatchObject({ address: 'orders', servers: [{ $ref: '#/servers/analytics' }] });
  });
});

describe('AsyncAPI document: channels', () => {
  it.each<[string, Handler[], Partial<MessagingOptions>, string[]]>([
    ['a queue by its name', [{ options: { queue: 'orders' } }], {}, ['orders']],
    [
      'a renamed queue by its name on the broker',
      [{ options: { queue: 'orders' } }],
      { queues: { orders: 'prod.orders' } },
      ['prod.orders'],
    ],
    [
      'a renamed exchange by its name on the broker',
      [{ options: { queue: 'audit', exchange: 'events', routingKey: 'order.*' } }],
      { exchanges: { events: 'prod.events' } },
      ['audit', 'prod.events'],
    ],
    [
      'every exchange of a queue with bindings',
      [{ options: { queue: 'audit', bindings: [{ exchange: 'a' }, { exchange: 'b', exchangeType: 'fanout' }] } }],
      {},
      ['audit', 'a', 'b'],
    ],
    [
      'a broadcast queue with its instance as a parameter',
      [{ options: { exchange: 'config', broadcast: true } }],
      { serviceName: 'svc' },
      ['config.svc.broadcast.{instance}', 'config'],
    ],
  ])('addresses %s', (_, handlers, module, expected) => {
    expect(addresses(documentOf(handlers, [module]))).toEqual(expected);
  });

  it('declares the parameter of a broadcast queue, which is exclusive to its instance and deleted with it', () => {
    const doc = documentOf([{ options: { exchange: 'config', broadcast: true } }], [{ serviceName: 'svc' }]);
    const channel = Object.values(doc.channels).find((c: any) => c.address.includes(INSTANCE_ID)) as Doc;
    expect(Object.keys(channel.parameters)).toEqual(['instance']);
    expect(channel.bindings.amqp.queue).toMatchObject({ durable: false, exclusive: true, autoDelete: true });
  });

  it('tells the bindings and topic patterns of a queue, and the type of each exchange', () => {
    const doc = documentOf([{ options: { queue: 'audit', exchange: 'events', routingKey: ['order.*', 'invoice.#'] } }]);
    expect(doc.channels.audit).toMatchObject({
      description: 'Bound to the topic exchange "events" with "order.*", "invoice.#"',
      'x-exchange-bindings': [{ exchange: 'events', routingKeys: ['order.*', 'invoice.#'] }],
      bindings: { amqp: { is: 'queue', queue: { name: 'audit', durable: true, exclusive: false, autoDelete: false } } },
    });
    expect(doc.channels['exchange.events'].bindings.amqp).toEqual({
      is: 'routingKey',
      exchange: { name: 'events', type: 'topic', durable: true, autoDelete: false, vhost: '/' },
      bindingVersion: '0.3.0',
    });
  });

  it.each<[string, Partial<MessagingOptions>, MessageHandlerOptions, Record<string, unknown> | undefined]>([
    ['classic (no arguments)', {}, { queue: 'q' }, undefined],
    [
      'quorum, from the module',
      { queueType: 'quorum' },
      { queue: 'q' },
      { 'x-queue-type': 'quorum', 'x-dead-letter-routing-key': 'q.dlq' },
    ],
    ['quorum, from the handler', {}, { queue: 'q', queueType: 'quorum' }, { 'x-queue-type': 'quorum' }],
    ['with its own arguments', {}, { queue: 'q', queueOptions: { arguments: { 'x-max-length': 10 } } }, { 'x-max-length': 10 }],
  ])('gives a %s queue its arguments', (_, module, options, args) => {
    const channel = documentOf([{ options }], [module]).channels.q;
    if (args === undefined) expect(channel['x-queue-arguments']).toBeUndefined();
    else expect(channel['x-queue-arguments']).toMatchObject(args);
  });

  it("makes no channel of the module's own dead-letter and retry queues: the handler's operation names them", () => {
    const doc = documentOf([
      { options: { queue: 'q', retry: { attempts: 4, delaysMs: [1000, 5000] } } },
      { options: { queue: 'r', retry: false } },
    ]);
    expect(addresses(doc)).toEqual(['q', 'r']);
    expect(doc.operations['H.handle0']).toMatchObject({
      'x-retry': { attempts: 4, delaysMs: [1000, 5000], queues: ['q.retry.1000ms', 'q.retry.5000ms'] },
      'x-dead-letter-queue': 'q.dlq',
    });
    expect(doc.operations['H.handle1']).toMatchObject({ 'x-retry': false, 'x-dead-letter-queue': 'r.dlq' });
  });
});

describe('AsyncAPI document: operations and messages', () => {
  it('receives per handler, its message described from a class once in components', () => {
    const doc = documentOf([
      { options: { queue: 'a' }, payload: OrderPlaced, name: 'A.take' },
      { options: { queue: 'b' }, payload: OrderPlaced, name: 'B.take' },
    ]);
    expect(doc.operations['A.take']).toMatchObject({
      action: 'receive',
      channel: { $ref: '#/channels/a' },
      messages: [{ $ref: '#/channels/a/messages/OrderPlaced' }],
      bindings: { amqp: { ack: true, bindingVersion: '0.3.0' } },
    });
    expect(doc.operations['A.take'].reply).toBeUndefined();
    expect(Object.keys(doc.components.messages)).toEqual(['OrderPlaced']);
    expect(doc.components.messages.OrderPlaced.payload).toEqual({ $ref: '#/components/schemas/OrderPlaced' });
    expect(doc.components.schemas.OrderPlaced).toMatchObject({
      properties: { orderId: { type: 'string' }, quantity: { type: 'integer', minimum: 1 } },
      required: ['orderId', 'quantity'],
    });
  });

  it('answers a request on its replyTo: a channel known at run time, with the result and the error', () => {
    const doc = documentOf([
      { options: { queue: 'quote' }, payload: OrderPlaced, reply: { payload: { type: 'number' } }, name: 'P.quote' },
    ]);
    const { reply } = doc.operations['P.quote'];
    expect(reply).toEqual({
      address: { location: '$message.header#/replyTo', description: expect.any(String) },
      channel: { $ref: '#/channels/P.quote.reply' },
      messages: [{ $ref: '#/channels/P.quote.reply/messages/P.quote.reply' }, { $ref: '#/channels/P.quote.reply/messages/HandlerError' }],
    });
    expect(doc.channels['P.quote.reply'].address).toBeNull();
    expect(doc.components.messages['P.quote.reply']).toMatchObject({
      payload: { type: 'number' },
      correlationId: { location: '$message.header#/correlationId' },
    });
    expect(doc.components.messages.HandlerError.headers.properties['x-reply-error']).toEqual({ const: true });
  });

  it("wraps a nest-rmq handler's message and answer in Nest's packets", () => {
    const doc = documentOf([
      { options: { queue: 'sum', format: 'nest-rmq', pattern: 'sum' }, payload: Array, reply: { payload: Number }, name: 'M.sum' },
    ]);
    const message = doc.components.messages['M.sum.message'];
    expect(message.payload).toMatchObject({ required: ['pattern', 'data'], properties: { data: { type: 'array' } } });
    expect(doc.operations['M.sum']['x-format']).toBe('nest-rmq');
    expect(doc.operations['M.sum'].reply.messages).toHaveLength(1);
    expect(doc.components.messages['M.sum.reply'].payload.properties).toMatchObject({
      response: { type: 'number' },
      isDisposed: { const: true },
    });
  });

  it('tells apart the handlers sharing a queue by their message types and routing patterns', () => {
    const doc = documentOf([
      { options: { queue: 'mail', exchange: 'ev', routingKey: 'user.*', messageType: 'welcome' }, name: 'Mail.welcome' },
      { options: { queue: 'mail', exchange: 'ev', routingKey: 'order.*' }, name: 'Mail.receipt' },
    ]);
    expect(Object.keys(doc.channels.mail.messages)).toEqual(['welcome', 'Mail.receipt.message']);
    expect(doc.components.messages.welcome.bindings).toEqual({ amqp: { messageType: 'welcome', bindingVersion: '0.3.0' } });
    expect(doc.operations['Mail.welcome']['x-routing-patterns']).toEqual(['user.*']);
    expect(doc.operations['Mail.receipt']['x-routing-patterns']).toEqual(['order.*']);
    expect(doc.channels.mail['x-exchange-bindings']).toEqual([{ exchange: 'ev', routingKeys: ['user.*', 'order.*'] }]);
  });

  it.each<[string, Partial<MessagingOptions>, Record<string, unknown>, Record<string, unknown>]>([
    [
      'a publish to an exchange, with its routing key',
      { exchanges: { events: 'prod.events' } },
      { exchange: 'events', routingKey: 'order.placed', payload: OrderPlaced },
      { channel: 'exchange.prod.events', amqp: { cc: ['order.placed'], deliveryMode: 2, mandatory: false } },
    ],
    [
      'a send to a queue (mandatory), not persistent',
      { persistent: false, queues: { orders: 'prod.orders' } },
      { queue: 'orders', name: 'PlaceOrder' },
      { channel: 'prod.orders', amqp: { deliveryMode: 1, mandatory: true } },
    ],
  ])('sends %s', (_, module, publish, expected) => {
    const doc = documentOf([], [{ ...module, asyncApi: { publishes: [publish] } }]);
    const [operation] = Object.values(doc.operations) as Doc[];
    expect(operation).toMatchObject({ action: 'send', channel: { $ref: `#/channels/${expected.channel}` } });
    expect(operation.bindings.amqp).toEqual({ ...(expected.amqp as object), bindingVersion: '0.3.0' });
    expect(doc.channels[expected.channel as string].address).toBe((expected.channel as string).replace(/^exchange\./, ''));
  });

  it('puts what the app sends and what its handlers take on the one channel of a queue or exchange', () => {
    const doc = documentOf(
      [{ options: { queue: 'billing', exchange: 'events', routingKey: 'order.placed' }, payload: OrderPlaced }],
      [{ asyncApi: { publishes: [{ exchange: 'events', routingKey: 'order.placed', payload: OrderPlaced }, { queue: 'billing' }] } }],
    );
    expect(addresses(doc)).toEqual(['billing', 'events']);
    expect(Object.keys(doc.channels['exchange.events'].messages)).toEqual(['OrderPlaced']);
    expect(Object.keys(doc.channels.billing.messages)).toEqual(['OrderPlaced', 'billing.message']);
  });

  it('is a valid AsyncAPI 3.0 document, with every feature at once', async () => {
    const doc = documentOf(
      [
        { options: { queue: 'orders', retry: { attempts: 3, delaysMs: [100] } }, payload: OrderPlaced, reply: { payload: undefined } },
        { options: { queue: 'mail', exchange: 'ev', routingKey: 'user.*', messageType: 'welcome' } },
        { options: { queue: 'mail', exchange: 'ev', routingKey: 'order.*' }, payload: { type: 'object' } },
        { options: { exchange: 'config', broadcast: true }, reply: { payload: String } },
        { options: { queue: 'sum', format: 'nest-rmq', pattern: { cmd: 'sum' } }, reply: { payload: Number } },
        { options: { queue: 'stats', connection: 'analytics', queueType: 'quorum', batch: { size: 10, timeoutMs: 100 } } },
      ],
      [
        {
          asyncApi: {
            publishes: [{ exchange: 'ev', routingKey: 'user.created', payload: OrderPlaced, summary: 's' }, { queue: 'orders' }],
          },
        },
        { name: 'analytics', uri: ['amqps://u:p@a/stats', 'amqps://u:p@b/stats'] },
      ],
    );
    const diagnostics = await new Parser().validate(doc as Parameters<Parser['validate']>[0]);
    // Only the note that AsyncAPI 3.1 exists (the document is 3.0.0, which more tools read).
    expect(diagnostics.map((d) => d.code)).toEqual(['asyncapi-latest-version']);
    // The parser leaves undeclared address parameters alone: every {parameter} must be declared.
    for (const channel of Object.values(doc.channels) as Doc[]) {
      const used = [...String(channel.address ?? '').matchAll(/\{(\w+)\}/g)].map((match) => match[1]);
      expect(Object.keys(channel.parameters ?? {})).toEqual(used);
    }
  });
});
