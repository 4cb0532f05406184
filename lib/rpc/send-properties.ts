import { nestPacket } from '../codec/nest-rmq-wire';
import { cloudEventHeaders } from '../codec/cloud-events';
import { randomUUID } from 'node:crypto';
import type { TrackContext } from '../context/track-context';
import type { NestRmqCallOptions, SendOptions } from '../interfaces/send-options.interface';
import { HEADER_ORIGIN } from '../messaging.constants';
import { InvalidArgumentError } from '../messaging.errors';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import type { PublishProperties } from '../transport/outgoing';

/** The longest delay Node's timers keep (a longer one fires at once), and so the longest we accept. */
export const MAX_DELAY_MS = 2 ** 31 - 1;

/**
 * The properties of a message sent with `options` (RpcClient now, or the outbox later): a fresh
 * id unless given, the module's defaults, `x-origin`, and the headers of the current TrackContext.
 */
export function sendProperties(
  options: SendOptions,
  mandatory: boolean,
  track: TrackContext,
  module: ResolvedMessagingOptions,
): PublishProperties {
  const headers: Record<string, unknown> = options.headers ? { ...options.headers } : {};
  headers[HEADER_ORIGIN] = module.serviceName;
  // A fresh message id doubles as the fresh request id of a message sent from no context; one
  // given by the caller may be reused on purpose (deduplication), so it never does.
  const freshId = options.messageId === undefined ? randomUUID() : undefined;
  const messageId = options.messageId ?? freshId!;
  if (options.cloudEvents !== undefined) {
    Object.assign(headers, cloudEventHeaders(options.cloudEvents, messageId, options.type, new Date(), options.contentType));
  }
  return {
    messageId,
    correlationId: options.correlationId,
    // A queue name in code, like `send`'s: renamed the same way.
    replyTo: options.replyTo === undefined ? undefined : renamed(module.queues, options.replyTo),
    priority: options.priority,
    expiration: options.expirationMs === undefined ? undefined : String(options.expirationMs),
    persistent: options.persistent ?? module.persistent,
    mandatory,
    contentType: options.contentType,
    type: options.type,
    headers: track.addHeaders(headers, freshId),
  };
}

/** Refuses what the broker or a timer would misread (NaN, Infinity, fractions, negatives) before anything is written. */
export function checkSendOptions(options: SendOptions): void {
  checkNestOptions(options);
  checkDuration('timeoutMs', options.timeoutMs);
  checkDuration('expirationMs', options.expirationMs);
  checkDuration('delayMs', options.delayMs);
  if (options.delayMs !== undefined && options.expirationMs !== undefined) {
    // The delay queue would dead-letter the message when its expiration ends, early if shorter
    // than the delay, and RabbitMQ removes the expiration when it dead-letters: it never counts
    // after the delay. Refused rather than half-applied.
    const why =
      'left out when "delayMs" is given: RabbitMQ drops the expiration of a delayed message when its delay ends, so it could only cut the delay short';
    throw new InvalidArgumentError('expirationMs', why, options.expirationMs);
  }
  if (options.type !== undefined && typeof options.type !== 'string') throw new InvalidArgumentError('type', 'a string', options.type);
  if (options.priority !== undefined && !(Number.isInteger(options.priority) && options.priority >= 0 && options.priority <= 255)) {
    throw new InvalidArgumentError('priority', 'an integer from 0 to 255', options.priority);
  }
}

/** A whole number of milliseconds from `min` (1 unless 0 means "at once") to MAX_DELAY_MS, or InvalidArgumentError. */
export function checkDuration(option: string, value: number | undefined, min = 1): void {
  if (value === undefined) return;
  if (!(Number.isInteger(value) && value >= min && value <= MAX_DELAY_MS)) {
    throw new InvalidArgumentError(option, `a whole number of milliseconds from ${min} to ${MAX_DELAY_MS}`, value);
  }
}

/** `format` is 'nest-rmq' or left out; a Nest call names its pattern, and only a Nest call has one. */
export function checkNestOptions(options: NestRmqCallOptions): void {
  if (options.format !== undefined && options.format !== 'nest-rmq')
    throw new InvalidArgumentError('format', "'nest-rmq' or left out", options.format);
  if (options.format === 'nest-rmq' && options.pattern === undefined) {
    throw new InvalidArgumentError(
      'pattern',
      'the Nest pattern to reach (a string or an object) when "format" is \'nest-rmq\'',
      options.pattern,
    );
  }
  if (options.format === undefined && options.pattern !== undefined) {
    throw new InvalidArgumentError('pattern', 'left out unless "format" is \'nest-rmq\'', options.pattern);
  }
}

/** The body of a send or publish: a Nest event packet for a Nest call, the payload as it is otherwise. */
export function eventBody(payload: unknown, options: NestRmqCallOptions): unknown {
  return options.format === 'nest-rmq' ? nestPacket(options.pattern!, payload) : payload;
}
