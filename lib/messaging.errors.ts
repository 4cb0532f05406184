/** Every error the library throws is a MessagingError, so callers can tell ours from theirs. */
export class MessagingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A module or handler option is wrong; thrown at startup. */
export class MessagingConfigError extends MessagingError {}

/** The broker could not be reached (the URL in the message has its password masked). */
export class BrokerUnreachableError extends MessagingError {}

/**
 * RabbitMQ answered, and refused this app's login (user name or password) or its vhost: startup
 * fails at once rather than after reconnect.startupTimeoutMs, since trying again cannot help.
 */
export class BrokerRefusedError extends BrokerUnreachableError {}

/** The connection or channel went away while an operation was pending. */
export class ConnectionLostError extends MessagingError {}

/** The broker refused to declare a queue, exchange or binding. */
export class TopologyError extends MessagingError {}

/** A publish found no queue to route to (mandatory flag, basic.return). */
export class UnroutableError extends MessagingError {
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(
      exchange === ''
        ? `No queue named "${routingKey}" exists: the message was returned unroutable`
        : `No queue is bound to exchange "${exchange}" for routing key "${routingKey}": the message was returned unroutable`,
    );
  }
}

/** The exchange published to does not exist (404 from the broker). */
export class ExchangeNotFoundError extends MessagingError {
  constructor(
    readonly exchange: string,
    brokerMessage: string,
  ) {
    super(`Exchange "${exchange}" does not exist (${brokerMessage})`);
  }
}

/** A publish could not be confirmed in time (no connection, broker alarm, buffer full). */
export class PublishTimeoutError extends MessagingError {}

/** request() got no reply in time. */
export class RpcTimeoutError extends MessagingError {
  constructor(
    readonly queue: string,
    readonly timeoutMs: number,
  ) {
    super(`No reply from "${queue}" within ${timeoutMs} ms`);
  }
}

/** The remote handler threw; carries its error's name and message. */
export class RpcRemoteError extends MessagingError {
  constructor(
    readonly remoteName: string,
    message: string,
    /** The HTTP status of the remote error, when it had one (a Nest HttpException such as NotFoundException). */
    readonly status?: number,
  ) {
    super(message);
  }
}

/** request()/gather() was aborted through its AbortSignal. */
export class RpcAbortedError extends MessagingError {
  constructor(reason?: unknown) {
    super('The request was aborted', { cause: reason });
    // Same name as the DOM AbortError, so `err.name === 'AbortError'` checks work.
    this.name = 'AbortError';
  }
}

/** Thrown by a handler: the message goes to the dead-letter queue at once, without retries. */
export class UnrecoverableError extends MessagingError {}

/** A message could not be encoded (e.g. a circular payload, or headers over AMQP's 64 KiB table limit). */
export class EncodeError extends MessagingError {}

/** The message body could not be decoded; it is dead-lettered without retries. */
export class DecodeError extends MessagingError {}

/** A message was delivered again and again without an outcome (it crashes its consumer). */
export class DeliveryLimitError extends MessagingError {}

/** The module is shutting down and takes no new work. */
export class ShuttingDownError extends MessagingError {}

/** TrackContext was written outside any message or CLS context. */
export class NoContextError extends MessagingError {}

/** The broker refused (nacked) one publish, e.g. a full queue with `x-overflow: reject-publish`. */
export class PublishNackedError extends MessagingError {
  constructor(
    readonly exchange: string,
    readonly routingKey: string,
  ) {
    super(
      exchange === ''
        ? `RabbitMQ refused the message for queue "${routingKey}" (nack; e.g. the queue is full and rejects publishes)`
        : `RabbitMQ refused the message for exchange "${exchange}", routing key "${routingKey}" (nack)`,
    );
  }
}

/** The broker refused a publish for lack of permission (403 ACCESS_REFUSED: no write permission on the exchange). */
export class PublishRefusedError extends MessagingError {
  constructor(
    readonly exchange: string,
    brokerMessage: string,
  ) {
    super(`RabbitMQ refused the publish to exchange "${exchange || 'amq.default'}" (${brokerMessage})`);
  }
}

/** TrackContext.set() would carry more items than `track.maxItems` allows. */
export class TrackLimitError extends MessagingError {}

/** A queue an operation needs does not exist (404 from the broker), e.g. the dead-letter queue of a replay. */
export class QueueNotFoundError extends MessagingError {
  constructor(
    readonly queue: string,
    detail: string,
  ) {
    super(`Queue "${queue}" does not exist: ${detail}`);
  }
}

/** An option of one call is invalid (e.g. a timeout that is not a positive integer); nothing was sent. */
export class InvalidArgumentError extends MessagingConfigError {
  constructor(
    readonly option: string,
    expected: string,
    got: unknown,
  ) {
    super(`Option "${option}" must be ${expected} (got ${typeof got === 'string' ? JSON.stringify(got.slice(0, 40)) : String(got)})`);
  }
}

/**
 * A guard or a pipe refused the message before its handler ran (e.g. ValidationPipe on an invalid
 * payload, a guard that returned false): it is dead-lettered at once, without retries, and a
 * request gets the reason. `cause` is the refusing exception.
 */
export class MessageRejectedError extends MessagingError {
  constructor(name: string, message: string, cause: unknown) {
    super(message, { cause });
    // Reported under the refusing exception's name (x-error-name, RpcRemoteError.remoteName).
    this.name = name;
  }
}

/** No handler of a shared queue takes this message (its routing key or type): it is dead-lettered. */
export class NoHandlerError extends UnrecoverableError {}

/** A message was settled twice by its handler (`context.ack()`, `nack()`, `retry()` or `deadLetter()`). */
export class SettlementError extends MessagingError {}

/** An idempotency store did not answer within `idempotency.storeTimeoutMs`: taken as unreachable. */
export class IdempotencyStoreTimeoutError extends MessagingError {}
