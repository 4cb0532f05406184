import type { JsonSchema, PayloadDescription } from './asyncapi-options.interface';
import type { RetryPolicy } from './messaging-options.interface';

export type ExchangeType = 'topic' | 'direct' | 'fanout' | 'headers';

/** RabbitMQ's queue types the module declares: `quorum` queues are replicated across a cluster's nodes. */
export type QueueType = 'quorum' | 'classic';

/** One exchange the queue is bound to. */
export interface HandlerBinding {
  exchange: string;
  /** Default `topic`. */
  exchangeType?: ExchangeType;
  /** Binding keys; default `#` for topic, the queue name for direct, none for fanout/headers. */
  routingKey?: string | string[];
}

export interface MessageHandlerOptions {
  /** The named connection (`forRoot({ name })`) this handler consumes on; unset: the default one. */
  connection?: string;
  /** The queue consumed (declared durable if missing). Required unless `broadcast`. */
  queue?: string;
  /** Bind the queue to this exchange (declared if missing, `topic` unless `exchangeType`). */
  exchange?: string;
  exchangeType?: ExchangeType;
  /** Binding keys; default `#` for topic, the queue name for direct, none for fanout/headers. */
  routingKey?: string | string[];
  /** Every running instance gets its own copy (a per-instance exclusive queue bound to `exchange`). */
  broadcast?: boolean;
  /** Max in-flight messages of this handler per instance. */
  prefetch?: number;
  /** Overrides the module default. */
  retry?: RetryPolicy | false;
  queueOptions?: { durable?: boolean; arguments?: Record<string, unknown> };
  /**
   * The queue's type (the same as `queueOptions.arguments['x-queue-type']`); overrides the
   * module's `queueType`. Its retry and dead-letter queues are of the same type.
   */
  queueType?: QueueType;
  /**
   * Runs at most once per message id within `idempotency.ttlMs`: a message already handled is
   * acked without calling the handler (a request gets the first reply again). Overrides the
   * module's `idempotency.default`.
   */
  idempotent?: boolean;
  /** More exchanges to bind the queue to (`exchange`/`routingKey` is a shorthand for one). */
  bindings?: HandlerBinding[];
  /**
   * Takes only messages of this AMQP `type` (`SendOptions.type` sets it). With it, or with
   * `routingKey` patterns, several handlers can share one queue.
   */
  messageType?: string;
  /** `false`: declare nothing, check at startup that the queues and exchanges exist. Overrides the module's `declare`. */
  declare?: boolean;
  /**
   * `'nest-rmq'`: the queue speaks Nest's RMQ transport, so a Nest `ClientRMQ` can call this
   * handler (`send`) or emit to it (`emit`) while both kinds of service exist: the handler gets the
   * packet's `data` as its payload, and its return value (or error) goes back as Nest's reply.
   */
  format?: 'nest-rmq';
  /** With `format: 'nest-rmq'`: takes only this Nest pattern (a string or an object, as `@MessagePattern` takes); without it, every pattern. */
  pattern?: string | number | Record<string, unknown>;
  /** The handler takes `(payloads[], contexts[])`: up to `size` messages gathered for at most `timeoutMs`. */
  batch?: { size: number; timeoutMs: number };
  /**
   * The payload's JSON Schema in the AsyncAPI document (`AsyncApiDocument`), instead of the one
   * made from the class of the `@Payload()` parameter.
   */
  schema?: JsonSchema;
  /**
   * What the AsyncAPI document says the handler answers a request with. By default it answers when
   * its declared return type is not `void`: a class is described, another type is an unknown
   * value; an `async` method's (or an Observable's) value cannot be told, so it answers nothing
   * unless this says so. `true`: an unknown value; `false`: no answer; a class or a JSON Schema:
   * that answer.
   */
  reply?: boolean | PayloadDescription;
}
