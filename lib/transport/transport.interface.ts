import type { EventEmitter } from 'node:events';

/**
 * The seam between the module and a broker. Everything AMQP-specific (sockets, frames, amqplib's
 * events and errors) lives behind it in `transport/amqp/`; `transport/memory/` implements the same
 * contract in-process with RabbitMQ's semantics. Consumer, outcome, RPC and publishing code see
 * only these types. The shapes follow AMQP 0-9-1 (and amqplib's message objects, so a delivery is
 * also what `MessageContext.raw` promises).
 */

export type ExchangeKind = 'direct' | 'topic' | 'fanout' | 'headers';

/** Properties of a message as delivered: every key present, absent ones undefined. */
export interface MessageProperties {
  contentType: string | undefined;
  contentEncoding: string | undefined;
  headers: Record<string, any> | undefined;
  deliveryMode: number | undefined;
  priority: number | undefined;
  correlationId: string | undefined;
  replyTo: string | undefined;
  expiration: string | undefined;
  messageId: string | undefined;
  timestamp: number | undefined;
  type: string | undefined;
  userId: string | undefined;
  appId: string | undefined;
  clusterId: string | undefined;
}

export interface MessageFields {
  deliveryTag: number;
  redelivered: boolean;
  exchange: string;
  routingKey: string;
}

/** A message received by a consumer, taken with `get`, or returned unroutable. */
export interface Message {
  content: Buffer;
  fields: MessageFields & { consumerTag: string; messageCount?: number };
  properties: MessageProperties;
}

/** What a publish may set. `expiration` is the per-message TTL in milliseconds. */
export interface PublishProperties {
  mandatory?: boolean;
  persistent?: boolean;
  deliveryMode?: number;
  contentType?: string;
  contentEncoding?: string;
  headers?: Record<string, unknown>;
  priority?: number;
  correlationId?: string;
  replyTo?: string;
  expiration?: string | number;
  messageId?: string;
  timestamp?: number;
  type?: string;
  userId?: string;
  appId?: string;
}

export interface QueueOptions {
  durable?: boolean;
  exclusive?: boolean;
  autoDelete?: boolean;
  arguments?: Record<string, unknown>;
}

export interface ExchangeOptions {
  durable?: boolean;
  autoDelete?: boolean;
  internal?: boolean;
  arguments?: Record<string, unknown>;
}

export interface DeleteQueueOptions {
  ifEmpty?: boolean;
  ifUnused?: boolean;
}

export interface QueueInfo {
  queue: string;
  messageCount: number;
  consumerCount: number;
}

/**
 * The broker's answer to one publish on a confirm channel: `ack` (it has the message), `nack` (it
 * refused it, e.g. a full queue with reject-publish), or `closed` (the channel went before an
 * answer came: the broker may or may not have it).
 */
export type ConfirmOutcome = 'ack' | 'nack' | 'closed';

/**
 * A channel. Events:
 * - `close` (error?: ChannelClosedError), once, when the channel is gone: with the broker's reason
 *   when the broker closed it (a refused declare, a publish to a missing exchange), without one
 *   when it was closed by us or went with its connection. Every confirm of the channel has been
 *   answered (`closed` for those left) before it fires.
 * - `return` (message): a mandatory publish the broker could not route; its confirm follows.
 * - `drain`: the connection takes writes again after `publish` returned false.
 */
export interface TransportChannel extends EventEmitter {
  /**
   * Writes a message. Returns false when the connection's buffer is full (wait for `drain`).
   * On a confirm channel `onConfirm` gets `token` and the broker's answer, in a later tick (one
   * function per publisher and a token per publish: a publish awaiting its confirm holds no
   * closure of its own but the transport's). Throws
   * ChannelClosedError when the channel is closing, and another error when the message cannot be
   * encoded (e.g. a header table over 64 KiB); nothing was written in either case.
   */
  publish<T>(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: PublishProperties,
    onConfirm?: (token: T, outcome: ConfirmOutcome) => void,
    token?: T,
  ): boolean;
  assertExchange(name: string, kind: ExchangeKind, options?: ExchangeOptions): Promise<void>;
  assertQueue(name: string, options?: QueueOptions): Promise<QueueInfo>;
  bindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  unbindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void>;
  /** Passive declare: rejects with ChannelClosedError (code 404) when the queue does not exist. */
  checkQueue(name: string): Promise<QueueInfo>;
  /** Passive declare: rejects with ChannelClosedError (code 404) when the exchange does not exist. */
  checkExchange(name: string): Promise<void>;
  /**
   * `ifEmpty` / `ifUnused`: the broker refuses (PRECONDITION_FAILED, the channel closes) while the
   * queue holds ready messages / has consumers, in the same step as the delete, so nothing that
   * arrives in between is lost.
   */
  deleteQueue(name: string, options?: DeleteQueueOptions): Promise<{ messageCount: number }>;
  deleteExchange(name: string): Promise<void>;
  purgeQueue(name: string): Promise<{ messageCount: number }>;
  /** Unacked deliveries each consumer started after this call may hold (0: no limit). */
  prefetch(count: number): Promise<void>;
  /** `onMessage(null)`: the broker cancelled the consumer (its queue was deleted, its node went). */
  consume(
    queue: string,
    onMessage: (message: Message | null) => void,
    options?: { noAck?: boolean; exclusive?: boolean; consumerTag?: string },
  ): Promise<{ consumerTag: string }>;
  cancel(consumerTag: string): Promise<void>;
  get(queue: string, options?: { noAck?: boolean }): Promise<Message | false>;
  /** Throws ChannelClosedError when the channel is gone (the broker requeues what it had). */
  ack(message: Message, allUpTo?: boolean): void;
  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void;
  close(): Promise<void>;
}

/**
 * A connection. Events: `close` (error?: Error) once when it is gone (with why, unless we closed
 * it), `error` (error) for the log, `blocked` (reason) / `unblocked` for a broker resource alarm.
 */
export interface TransportConnection extends EventEmitter {
  createChannel(options?: { confirms?: boolean }): Promise<TransportChannel>;
  /** Closes politely; the broker's answer may never come (a blocked connection), see `destroy`. */
  close(): Promise<void>;
  /** Drops the connection without waiting for the broker. */
  destroy(reason: Error): void;
}

export interface ConnectOptions {
  heartbeatSeconds: number;
  /** Shown by the broker's management tools. */
  connectionName: string;
  /** Gives up on a handshake after this long. */
  timeoutMs: number;
  tls?: { ca?: string | Buffer | Array<string | Buffer>; cert?: string | Buffer; key?: string | Buffer; passphrase?: string };
}

export interface Transport {
  connect(url: string, options: ConnectOptions): Promise<TransportConnection>;
}
