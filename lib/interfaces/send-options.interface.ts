export type HeaderValue = string | number | boolean;

/** Calls to a service on Nest's RMQ transport (`@nestjs/microservices`), while it has not moved yet. */
export interface NestRmqCallOptions {
  /** `'nest-rmq'`: the body is Nest's packet `{ pattern, data, id? }` and a reply Nest's `{ err, response, isDisposed }`. */
  format?: 'nest-rmq';
  /** The Nest pattern of the `@MessagePattern` (request) or `@EventPattern` (send, publish) to reach: a string or an object. */
  pattern?: string | number | Record<string, unknown>;
}

/** What `SendOptions.cloudEvents` asks for: the event's producer and kind; its `id` is the message id, its `time` now. */
export interface CloudEventsOptions {
  /** A URI-reference naming the producer, e.g. `/orders-service` or `https://example.com/orders`. */
  source: string;
  /** The event's kind, e.g. `com.example.order.shipped`; default: the send's `type`. */
  type?: string;
  subject?: string;
}

export interface SendOptions extends NestRmqCallOptions {
  /**
   * Sends the message as a CloudEvent in binary mode (the CloudEvents AMQP binding): its attributes
   * as `cloudEvents:*` headers (`specversion`, `id` = the message id, `source`, `type`, `time`,
   * `subject`, `datacontenttype`), its payload as the body.
   */
  cloudEvents?: CloudEventsOptions;
  headers?: Record<string, HeaderValue>;
  /** The handler's result goes to this queue, correlated by the returned message id. */
  replyTo?: string;
  correlationId?: string;
  messageId?: string;
  priority?: number;
  expirationMs?: number;
  /** Default: the module's `persistent` option (true). */
  persistent?: boolean;
  /** Reject with UnroutableError when no queue takes the message. Default: true for `send`, false for `publish`. */
  mandatory?: boolean;
  /** How long to wait for a connection and the broker's confirm. Default: `publishTimeoutMs`. */
  timeoutMs?: number;
  /**
   * The codec that encodes the payload: a built-in one (`application/json`, `application/octet-stream`,
   * `text/plain`) or one of the module's `codecs`. Default: JSON, or bytes for a Buffer.
   */
  contentType?: string;
  /** The AMQP `type` property: handlers sharing a queue can be picked by it (`messageType`). */
  type?: string;
  /**
   * Delivered after this many milliseconds: the message waits in the broker (a TTL queue per
   * target and delay, as retries do), so it survives a restart of the sender.
   */
  delayMs?: number;
}

export interface RequestOptions extends NestRmqCallOptions {
  timeoutMs?: number;
  headers?: Record<string, HeaderValue>;
  signal?: AbortSignal;
}

export interface GatherOptions extends RequestOptions {
  /** Resolve as soon as this many replies arrived. */
  expect?: number;
}
