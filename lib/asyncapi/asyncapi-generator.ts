import { isDeepStrictEqual } from 'node:util';
import type { AsyncApiPublish, JsonSchema } from '../interfaces/asyncapi-options.interface';
import type { ExchangeType } from '../interfaces/message-handler-options.interface';
import {
  DEFAULT_CONNECTION,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ERROR_STATUS,
  HEADER_REPLY_ERROR,
  MAX_ERROR_MESSAGE_LENGTH,
} from '../messaging.constants';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import { deadLetterQueueName, type HandlerDefinition, type ResolvedBinding, retryQueueNames } from '../topology/handler-definition';
import { describeServer, type ServerObject } from './asyncapi-servers';
import type { HandlerTypes } from './handler-types';
import type { PayloadSchemas } from './payload-schemas';

const BINDING_VERSION = '0.3.0';

/**
 * What a broadcast handler's queue name ends with in the document: each instance of the app has a
 * queue of its own, named by the instance id it makes at startup (see HandlerConsumers).
 */
export const INSTANCE_ID = '{instance}';

/** What the document needs of a connection's options. */
export type DocumentedConnection = Pick<ResolvedMessagingOptions, 'name' | 'urls' | 'persistent' | 'queues' | 'exchanges' | 'asyncApi'>;

/** A handler of the app: its definition (queue names after the rename maps), and what its message and answer are. */
export interface DocumentedHandler extends HandlerTypes {
  connection: string;
  definition: HandlerDefinition;
}

export interface AsyncApiInput {
  info: { title: string; version: string; description?: string };
  connections: DocumentedConnection[];
  handlers: DocumentedHandler[];
}

type Obj = Record<string, unknown>;

/** How a handler's answer is correlated with its request. */
const CORRELATION = {
  location: '$message.header#/correlationId',
  description: "The request's correlationId, or its messageId when it has none",
};

/** What a request gets when its handler throws (the caller's request() rejects with RpcRemoteError). */
const HANDLER_ERROR: Obj = {
  name: 'HandlerError',
  summary: "The answer to a request whose handler threw: the caller's request() rejects with RpcRemoteError",
  headers: {
    type: 'object',
    required: [HEADER_REPLY_ERROR, HEADER_ERROR_NAME],
    properties: {
      [HEADER_REPLY_ERROR]: { const: true },
      [HEADER_ERROR_NAME]: { type: 'string' },
      [HEADER_ERROR_MESSAGE]: { type: 'string', maxLength: MAX_ERROR_MESSAGE_LENGTH },
      [HEADER_ERROR_STATUS]: { type: 'integer', description: 'The HTTP status of an HttpException' },
    },
  },
  payload: {
    type: 'object',
    required: ['name', 'message'],
    properties: { name: { type: 'string' }, message: { type: 'string', maxLength: MAX_ERROR_MESSAGE_LENGTH } },
  },
  correlationId: CORRELATION,
};

/**
 * The AsyncAPI 3.0 document of an app, from what the module knows: one server per connection; a
 * channel per queue a handler consumes (addressed by its name on the broker), per exchange one is
 * bound to, and per exchange or queue the app says it sends to; a `receive` operation per handler
 * (with the `reply` of one that answers), a `send` operation per `asyncApi.publishes` entry.
 *
 * The module's own dead-letter and retry queues are no channels: nothing of the app sends to them
 * or consumes them by name. Each receive operation names them (`x-dead-letter-queue`, `x-retry`).
 * A pure function: the schemas of classes come from `schemas`.
 */
export function asyncApiDocument(input: AsyncApiInput, schemas: PayloadSchemas): Obj {
  const builder = new DocumentBuilder(schemas);
  for (const connection of input.connections) builder.server(connection);
  const queueOf = ({ connection, definition }: DocumentedHandler) => JSON.stringify([connection, definition.queue]);
  const perQueue = new Map<string, number>();
  for (const handler of input.handlers) perQueue.set(queueOf(handler), (perQueue.get(queueOf(handler)) ?? 0) + 1);
  for (const handler of input.handlers) builder.receive(handler, perQueue.get(queueOf(handler))! > 1);
  for (const connection of input.connections) {
    for (const publish of connection.asyncApi.publishes) builder.send(connection, publish);
  }
  return {
    asyncapi: '3.0.0',
    info: input.info,
    defaultContentType: 'application/json',
    servers: builder.servers,
    channels: builder.channels,
    operations: builder.operations,
    components: { messages: builder.messages, schemas: schemas.schemas() },
  };
}

class DocumentBuilder {
  readonly servers: Record<string, ServerObject> = {};
  readonly channels: Record<string, Obj> = {};
  readonly operations: Record<string, Obj> = {};
  readonly messages: Record<string, Obj> = {};
  private readonly vhosts = new Map<string, string>();
  private readonly channelIds = new Map<string, string>();
  /** The exchanges each queue channel is bound to, as its handlers tell them. */
  private readonly bindings = new Map<string, ResolvedBinding[]>();

  constructor(private readonly schemas: PayloadSchemas) {}

  server(connection: DocumentedConnection): void {
    const described = describeServer(connection.name, connection.asyncApi.server ? [connection.asyncApi.server] : connection.urls);
    this.servers[connection.name] = described.server;
    this.vhosts.set(connection.name, described.vhost);
  }

  /** `shared`: other handlers take messages from the same queue, each those of its routing keys and type. */
  receive({ connection, definition, payload, reply }: DocumentedHandler, shared: boolean): void {
    // A handler on a connection nobody made has failed startup already (ConnectionDirectory).
    if (!this.vhosts.has(connection)) return;
    const queue = this.queueChannel(connection, definition.queue, definition);
    const described = this.schemas.describe(payload);
    const nest = definition.format === 'nest-rmq';
    const message = this.message(described.className ?? definition.messageType ?? `${definition.name}.message`, {
      payload: nest ? nestPacket(described.schema, definition.nestRoute) : described.schema,
      ...messageBindings(definition.messageType),
    });
    this.addMessage(queue, message);
    for (const binding of definition.bindings) {
      this.addMessage(this.exchangeChannel(connection, binding.exchange, binding.exchangeType, definition.declare), message);
      this.bind(queue, binding);
    }
    const id = uniqueKey(this.operations, definition.name);
    this.operations[id] = {
      action: 'receive',
      channel: channelRef(queue),
      title: definition.name,
      messages: [channelMessageRef(queue, message)],
      bindings: { amqp: { ack: true, bindingVersion: BINDING_VERSION } },
      ...(reply ? { reply: this.reply(connection, id, definition, reply.payload) } : {}),
      ...handlerExtensions(definition),
      ...(shared && definition.routingPatterns.length > 0 ? { 'x-routing-patterns': definition.routingPatterns } : {}),
    };
  }

  send(connection: DocumentedConnection, publish: AsyncApiPublish): void {
    const exchange = publish.exchange === undefined ? undefined : renamed(connection.exchanges, publish.exchange);
    const queue = publish.queue === undefined ? undefined : renamed(connection.queues, publish.queue);
    const channel =
      exchange === undefined
        ? this.queueChannel(connection.name, queue!)
        : this.exchangeChannel(connection.name, exchange, publish.exchangeType ?? 'topic', false);
    const described = this.schemas.describe(publish.payload);
    const where = `${exchange ?? queue}${publish.routingKey ? `.${publish.routingKey}` : ''}`;
    const message = this.message(publish.name ?? described.className ?? publish.messageType ?? `${where}.message`, {
      payload: described.schema,
      ...messageBindings(publish.messageType),
    });
    this.addMessage(channel, message);
    const routing = exchange !== undefined && publish.routingKey !== undefined ? { cc: [publish.routingKey] } : {};
    this.operations[uniqueKey(this.operations, `send.${publish.name ?? where}`)] = {
      action: 'send',
      channel: channelRef(channel),
      ...(publish.summary ? { summary: publish.summary } : {}),
      ...(publish.description ? { description: publish.description } : {}),
      messages: [channelMessageRef(channel, message)],
      bindings: {
        amqp: {
          ...routing,
          deliveryMode: connection.persistent ? 2 : 1,
          // RpcClient's defaults: a send to a queue that does not exist fails, an event without a subscriber does not.
          mandatory: queue !== undefined,
          bindingVersion: BINDING_VERSION,
        },
      },
    };
  }

  /**
   * The answer of a handler: to the request's `replyTo` (a queue the caller names, or RabbitMQ's
   * direct reply-to), a channel known only at run time, so its address is null.
   */
  private reply(connection: string, operation: string, definition: HandlerDefinition, payload: unknown): Obj {
    const described = this.schemas.describe(payload);
    const nest = definition.format === 'nest-rmq';
    const result = this.message(described.className ?? `${definition.name}.reply`, {
      payload: nest ? nestReply(described.schema) : described.schema,
      correlationId: CORRELATION,
    });
    // A Nest client reads a failure from the reply's body (`err`), as it reads the result.
    const messages = nest ? [result] : [result, this.message('HandlerError', HANDLER_ERROR)];
    const channel = uniqueKey(this.channels, `${operation}.reply`);
    this.channels[channel] = {
      address: null,
      description: `Where ${definition.name} answers: the queue a request names in replyTo (RabbitMQ's direct reply-to for request() and gather())`,
      servers: [serverRef(connection)],
      messages: Object.fromEntries(messages.map((id) => [id, messageRef(id)])),
    };
    return {
      address: { location: '$message.header#/replyTo', description: "The request's replyTo property" },
      channel: channelRef(channel),
      messages: messages.map((id) => channelMessageRef(channel, id)),
    };
  }

  private queueChannel(connection: string, name: string, definition?: HandlerDefinition): string {
    return this.channel(connection, 'queue', name, () => {
      const queue = definition
        ? { name, durable: definition.durable, exclusive: definition.broadcast, autoDelete: definition.broadcast }
        : { name };
      const args = definition?.queueArguments ?? {};
      return {
        address: name,
        servers: [serverRef(connection)],
        messages: {},
        ...(definition?.broadcast
          ? {
              parameters: {
                instance: { description: "The consuming instance's id (<hostname>-<pid>-<random>): each instance has a queue of its own" },
              },
            }
          : {}),
        bindings: { amqp: { is: 'queue', queue: { ...queue, vhost: this.vhosts.get(connection) }, bindingVersion: BINDING_VERSION } },
        ...(Object.keys(args).length > 0 ? { 'x-queue-arguments': args } : {}),
      };
    });
  }

  /** `declared`: the module declares it (durable), else the app only publishes to it and its flags are not known. */
  private exchangeChannel(connection: string, name: string, type: ExchangeType, declared: boolean): string {
    return this.channel(connection, 'exchange', name, () => ({
      address: name,
      description: `The ${type} exchange "${name}"`,
      servers: [serverRef(connection)],
      messages: {},
      bindings: {
        amqp: {
          is: 'routingKey',
          exchange: { name, type, ...(declared ? { durable: true, autoDelete: false } : {}), vhost: this.vhosts.get(connection) },
          bindingVersion: BINDING_VERSION,
        },
      },
    }));
  }

  /** One channel per queue or exchange of a connection; a named connection's ids start with its name. */
  private channel(connection: string, kind: 'queue' | 'exchange', name: string, make: () => Obj): string {
    const key = JSON.stringify([connection, kind, name]);
    let id = this.channelIds.get(key);
    if (id === undefined) {
      const prefix = connection === DEFAULT_CONNECTION ? '' : `${connection}.`;
      id = uniqueKey(this.channels, `${prefix}${kind === 'exchange' ? 'exchange.' : ''}${name}`);
      this.channelIds.set(key, id);
      this.channels[id] = make();
    }
    return id;
  }

  /** A queue's bindings, from all the handlers sharing it, told in its description and `x-exchange-bindings`. */
  private bind(queue: string, binding: ResolvedBinding): void {
    const list = this.bindings.get(queue) ?? [];
    const known = list.find((b) => b.exchange === binding.exchange);
    if (known) known.routingKeys = [...new Set([...known.routingKeys, ...binding.routingKeys])];
    else list.push({ ...binding, routingKeys: [...binding.routingKeys] });
    this.bindings.set(queue, list);
    this.channels[queue].description = list.map(describeBinding).join('; ');
    this.channels[queue]['x-exchange-bindings'] = list.map(({ exchange, routingKeys }) => ({ exchange, routingKeys }));
  }

  /** The same message (payload, type) is one component, however many handlers and channels carry it. */
  private message(name: string, object: Obj): string {
    const named = { name, ...object };
    const known = Object.keys(this.messages).find((id) => isDeepStrictEqual(this.messages[id], named));
    if (known) return known;
    const id = uniqueKey(this.messages, name);
    this.messages[id] = named;
    return id;
  }

  private addMessage(channel: string, message: string): void {
    (this.channels[channel].messages as Obj)[message] = messageRef(message);
  }
}

/** What the document tells of a handler beside AsyncAPI's fields: how the module runs it. */
function handlerExtensions(definition: HandlerDefinition): Obj {
  const { retry } = definition;
  return {
    'x-prefetch': definition.prefetch,
    'x-retry': retry && {
      attempts: retry.attempts,
      delaysMs: retry.delaysMs,
      queues: retryQueueNames(definition),
    },
    'x-dead-letter-queue': deadLetterQueueName(definition),
    ...(definition.idempotent ? { 'x-idempotent': true } : {}),
    ...(definition.batch ? { 'x-batch': definition.batch } : {}),
    ...(definition.format === 'nest-rmq' ? { 'x-format': 'nest-rmq' } : {}),
    ...(definition.declare ? {} : { 'x-declare': false }),
  };
}

function describeBinding({ exchange, exchangeType, routingKeys }: ResolvedBinding): string {
  const keys = exchangeType === 'topic' || exchangeType === 'direct' ? ` with ${routingKeys.map((key) => `"${key}"`).join(', ')}` : '';
  return `Bound to the ${exchangeType} exchange "${exchange}"${keys}`;
}

function messageBindings(messageType: string | undefined): Obj {
  return messageType === undefined ? {} : { bindings: { amqp: { messageType, bindingVersion: BINDING_VERSION } } };
}

/** A Nest RMQ request or event (see codec/nest-rmq-wire.ts): the handler's payload is its `data`. */
function nestPacket(data: JsonSchema, route: string | undefined): JsonSchema {
  return {
    type: 'object',
    required: ['pattern', 'data'],
    properties: {
      pattern: { description: route === undefined ? 'The Nest pattern' : `The Nest pattern, routed as ${route}` },
      data,
      id: { type: 'string', description: "A request's correlation id (an event has none)" },
    },
  };
}

function nestReply(response: JsonSchema): JsonSchema {
  return {
    type: 'object',
    properties: { response, err: { description: 'What the handler threw, instead of a response' }, isDisposed: { const: true } },
  };
}

/**
 * A key of `record` made of `base` (characters a JSON pointer and AsyncAPI's keys take), with a
 * number when taken. Never `__proto__`, which would set the prototype of the object it is put in.
 */
function uniqueKey(record: Obj, base: string): string {
  const safe = base.replace(/[^\w.-]/g, '_');
  let key = safe;
  for (let n = 2; Object.hasOwn(record, key) || key === '__proto__'; n++) key = `${safe}_${n}`;
  return key;
}

const serverRef = (server: string) => ({ $ref: `#/servers/${server}` });
const channelRef = (channel: string) => ({ $ref: `#/channels/${channel}` });
const messageRef = (message: string) => ({ $ref: `#/components/messages/${message}` });
const channelMessageRef = (channel: string, message: string) => ({ $ref: `#/channels/${channel}/messages/${message}` });
