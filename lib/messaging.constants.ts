/** Injection tokens, metadata keys and header names shared across the library. */

export const MESSAGING_OPTIONS = Symbol('nestjs-messaging:options');
/** Each forRoot's connection name, a value provider of its module (found by ConnectionDirectory). */
export const MESSAGING_CONNECTION = Symbol('nestjs-messaging:connection');
/** The name of the connection of an unnamed forRoot. */
export const DEFAULT_CONNECTION = 'default';
export const MESSAGING_LOGGER = Symbol('nestjs-messaging:logger');
/** The Telemetry the `metrics` option and an OpenTelemetry SDK ask for (see telemetry-factory.ts). */
export const TELEMETRY = Symbol('nestjs-messaging:telemetry');
/**
 * Provided (true) by a plug-in that reads the per-queue outcome counts (the console): only then
 * does each connection count them (see OutcomeCounters), so an app without one pays nothing.
 */
export const COUNT_OUTCOMES = Symbol('nestjs-messaging:count-outcomes');
/** The IdempotencyStore: `idempotency.store`, or a MemoryIdempotencyStore. */
export const IDEMPOTENCY_STORE = Symbol('nestjs-messaging:idempotency-store');
/** The publisher of requests and direct replies: no confirms (the reply is the proof), its own channel. */
export const RPC_PUBLISHER = Symbol('nestjs-messaging:rpc-publisher');
export const MESSAGE_HANDLER_METADATA = 'nestjs-messaging:message-handler';

/** Token of the current message's MessageContext, injectable into request-scoped providers. */
export const MESSAGE_CONTEXT = 'nestjs-messaging:message-context';

export const HEADER_REQUEST_ID = 'x-request-id';
export const HEADER_TRACK_PREFIX = 'x-track-';
export const HEADER_CAUSATION_ID = 'x-causation-id';
export const HEADER_ORIGIN = 'x-origin';
export const HEADER_ATTEMPTS = 'x-attempts';
export const HEADER_REDELIVERIES = 'x-redeliveries';
/** Binds x-attempts and x-redeliveries to the queue and message they were written for (see retry-counters.ts). */
export const HEADER_COUNTERS_CHECK = 'x-counters-check';
/** Headers RabbitMQ writes when it dead-letters a message; copies the module makes leave them out (see MessageOutcome). */
export const BROKER_DEATH_HEADERS = [
  'x-death',
  'x-first-death-exchange',
  'x-first-death-queue',
  'x-first-death-reason',
  'x-last-death-exchange',
  'x-last-death-queue',
  'x-last-death-reason',
];
export const HEADER_ERROR_NAME = 'x-error-name';
export const HEADER_ERROR_MESSAGE = 'x-error-message';
/** On a dead letter: where the error was thrown, the stack's frames cut to MAX_ERROR_MESSAGE_LENGTH (see stackExcerpt). */
export const HEADER_ERROR_STACK = 'x-error-stack';
/** RabbitMQ's count of a quorum queue message's returns so far, on each redelivery. */
export const HEADER_DELIVERY_COUNT = 'x-delivery-count';
/** On an error reply: the HTTP status the handler's error carried (an HttpException's), for the caller's HTTP answer. */
export const HEADER_ERROR_STATUS = 'x-error-status';
export const HEADER_ORIGINAL_QUEUE = 'x-original-queue';
/** Where a message was first published: copies travel through the default exchange and carry it here. */
export const HEADER_ORIGINAL_EXCHANGE = 'x-original-exchange';
export const HEADER_ORIGINAL_ROUTING_KEY = 'x-original-routing-key';
/** Marks a reply that carries a remote error instead of a result. */
export const HEADER_REPLY_ERROR = 'x-reply-error';

export const DIRECT_REPLY_TO = 'amq.rabbitmq.reply-to';
export const CONTENT_TYPE_JSON = 'application/json';
export const CONTENT_TYPE_BINARY = 'application/octet-stream';

export const MAX_ERROR_MESSAGE_LENGTH = 1024;
