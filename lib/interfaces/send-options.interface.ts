export type HeaderValue = string | number | boolean;

export interface SendOptions {
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

export interface RequestOptions {
  timeoutMs?: number;
  headers?: Record<string, HeaderValue>;
  signal?: AbortSignal;
}

export interface GatherOptions extends RequestOptions {
  /** Resolve as soon as this many replies arrived. */
  expect?: number;
}
