import { nestRoute } from '../codec/nest-rmq-wire';
import type { ExchangeType, HandlerBinding, MessageHandlerOptions } from '../interfaces/message-handler-options.interface';
import type { RetryPolicy } from '../interfaces/messaging-options.interface';
import { MessagingConfigError } from '../messaging.errors';
import { EXCHANGE_TYPES, isPlainObject, renamed, resolveRetry, type ResolvedMessagingOptions } from '../messaging.options';
import { handlerQueueArguments, legacyQueueArguments } from './handler-queue-arguments';

/** An exchange a queue is bound to, with its keys worked out. */
export interface ResolvedBinding {
  exchange: string;
  exchangeType: ExchangeType;
  routingKeys: string[];
}

/** A handler's options with the module's defaults applied and its queue names worked out. */
export interface HandlerDefinition {
  /** `Class.method`, for logs and errors. */
  name: string;
  /** The queue consumed (per instance for broadcast handlers). */
  queue: string;
  /** Stem of the dead-letter and retry queue names. */
  baseQueue: string;
  exchange?: string;
  exchangeType: ExchangeType;
  routingKeys: string[];
  broadcast: boolean;
  prefetch: number;
  retry: Required<RetryPolicy> | false;
  durable: boolean;
  queueArguments: Record<string, unknown>;
  /** The arguments an earlier version declared the same queue with, when they differ (see legacyQueueArguments). */
  legacyQueueArguments?: Record<string, unknown>;
  /** Every binding of the queue: the `exchange` shorthand's first, then `bindings`. */
  bindings: ResolvedBinding[];
  /**
   * What the handler takes from a queue it shares with others (see queue-routes.ts): messages of
   * this AMQP type, and/or routed with a key matching one of these patterns (the routing keys it
   * names; none: any key).
   */
  messageType?: string;
  routingPatterns: string[];
  /** False: nothing is declared; startup checks that everything exists. */
  declare: boolean;
  batch?: { size: number; timeoutMs: number };
  /** Runs at most once per message id (see IdempotencyGuard). */
  idempotent: boolean;
  /** `nest-rmq`: the queue speaks Nest's RMQ transport (see codec/nest-rmq-wire.ts). */
  format: MessageFormat;
  /** With `nest-rmq`: takes only messages of this Nest pattern, as Nest routes it (none: every pattern). */
  nestRoute?: string;
}

export type MessageFormat = 'native' | 'nest-rmq';

function fail(name: string, message: string): never {
  throw new MessagingConfigError(`@MessageHandler on ${name}: ${message}`);
}

function checkName(name: string, option: string, value: unknown): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 255) {
    fail(name, `"${option}" must be a non-empty string of at most 255 characters (got ${JSON.stringify(value)})`);
  }
  if (value.startsWith('amq.') && option === 'queue') fail(name, `queue names starting with "amq." are reserved by RabbitMQ`);
  return value;
}

export function defineHandler(
  name: string,
  options: MessageHandlerOptions,
  module: ResolvedMessagingOptions,
  instanceId: string,
): HandlerDefinition {
  const broadcast = options.broadcast ?? false;
  const exchange = options.exchange === undefined ? undefined : renamed(module.exchanges, checkName(name, 'exchange', options.exchange));
  if (broadcast && !exchange) fail(name, '"broadcast: true" needs an "exchange" to bind the per-instance queue to');
  if (!broadcast && options.queue === undefined) fail(name, '"queue" is required unless "broadcast" is true');
  const exchangeType = options.exchangeType ?? 'topic';
  if (!EXCHANGE_TYPES.includes(exchangeType))
    fail(name, `"exchangeType" must be one of ${EXCHANGE_TYPES.join(', ')} (got ${JSON.stringify(exchangeType)})`);
  const prefetch = options.prefetch ?? module.prefetch;
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535)
    fail(name, `"prefetch" must be an integer from 1 to 65535 (got ${prefetch})`);
  const baseQueue =
    options.queue === undefined ? `${exchange}.${module.serviceName}` : renamed(module.queues, checkName(name, 'queue', options.queue));
  const queue = broadcast ? `${baseQueue}.broadcast.${instanceId}` : baseQueue;

  const keys = options.routingKey === undefined ? [] : Array.isArray(options.routingKey) ? options.routingKey : [options.routingKey];
  if (keys.some((k) => typeof k !== 'string')) fail(name, '"routingKey" must be a string or an array of strings');
  const routingKeys = keys.length > 0 || !exchange ? keys : defaultKeys(exchangeType, baseQueue);
  if (keys.length > 0 && !exchange) fail(name, '"routingKey" needs an "exchange" (without one the queue is reached by its name)');

  const queueOptions = options.queueOptions ?? {};
  if (typeof queueOptions !== 'object' || queueOptions === null) fail(name, '"queueOptions" must be an object');
  if (options.messageType !== undefined && (typeof options.messageType !== 'string' || options.messageType === '')) {
    fail(name, `"messageType" must be a non-empty string (got ${JSON.stringify(options.messageType)})`);
  }
  if (options.declare !== undefined && typeof options.declare !== 'boolean')
    fail(name, `"declare" must be true or false (got ${JSON.stringify(options.declare)})`);
  const bindings = [
    ...(exchange ? [{ exchange, exchangeType, routingKeys }] : []),
    ...resolveBindings(name, options.bindings, baseQueue, module.exchanges),
  ];
  if (broadcast && bindings.length > 1) fail(name, '"broadcast: true" takes one "exchange"; "bindings" are for shared queues');
  const batch = resolveBatch(name, options.batch);
  const declare = options.declare ?? module.declare;
  if (broadcast && !declare) fail(name, '"broadcast: true" needs its per-instance queue declared: it cannot run with "declare: false"');
  if (options.idempotent !== undefined && typeof options.idempotent !== 'boolean')
    fail(name, `"idempotent" must be true or false (got ${JSON.stringify(options.idempotent)})`);
  if (options.format !== undefined && options.format !== 'nest-rmq') {
    fail(name, `"format" must be 'nest-rmq' or left out (got ${JSON.stringify(options.format)})`);
  }
  if (options.pattern !== undefined && options.format !== 'nest-rmq')
    fail(name, '"pattern" is a Nest RMQ pattern: it needs "format: \'nest-rmq\'"');
  let nestPattern: string | undefined;
  try {
    nestPattern = options.pattern === undefined ? undefined : nestRoute(options.pattern);
  } catch (error) {
    fail(name, `"pattern" ${(error as Error).message}`);
  }
  checkDescription(name, options);
  const durable = broadcast ? false : (queueOptions.durable ?? true);
  const queueArguments = handlerQueueArguments(
    options,
    { moduleQueueType: module.queueType, broadcast, durable, deadLetterQueue: deadLetterQueueName({ baseQueue }) },
    (message) => fail(name, message),
  );
  return {
    name,
    queue,
    baseQueue,
    exchange,
    exchangeType,
    routingKeys,
    broadcast,
    prefetch,
    retry: resolveRetry(options.retry, `${name} retry`, module.retry),
    durable,
    queueArguments,
    legacyQueueArguments: legacyQueueArguments(options, queueArguments),
    bindings,
    messageType: options.messageType,
    routingPatterns: [...keys, ...(options.bindings ?? []).flatMap((b) => (b.routingKey === undefined ? [] : [b.routingKey].flat()))],
    declare,
    idempotent: options.idempotent ?? module.idempotency.default,
    format: options.format ?? 'native',
    nestRoute: nestPattern,
    // The broker must let a whole batch in: the prefetch is at least its size.
    ...(batch ? { batch, prefetch: Math.max(prefetch, batch.size) } : {}),
  };
}

function resolveBindings(
  name: string,
  bindings: HandlerBinding[] | undefined,
  queue: string,
  exchanges: Record<string, string>,
): ResolvedBinding[] {
  if (bindings === undefined) return [];
  if (!Array.isArray(bindings)) fail(name, '"bindings" must be an array of { exchange, exchangeType?, routingKey? }');
  return bindings.map((binding, i) => {
    if (typeof binding !== 'object' || binding === null)
      fail(name, `"bindings[${i}]" must be an object { exchange, exchangeType?, routingKey? }`);
    const exchange = renamed(exchanges, checkName(name, `bindings[${i}].exchange`, binding.exchange));
    const exchangeType = binding.exchangeType ?? 'topic';
    if (!EXCHANGE_TYPES.includes(exchangeType))
      fail(name, `"bindings[${i}].exchangeType" must be one of ${EXCHANGE_TYPES.join(', ')} (got ${JSON.stringify(exchangeType)})`);
    const keys = binding.routingKey === undefined ? [] : Array.isArray(binding.routingKey) ? binding.routingKey : [binding.routingKey];
    if (keys.some((k) => typeof k !== 'string')) fail(name, `"bindings[${i}].routingKey" must be a string or an array of strings`);
    return { exchange, exchangeType, routingKeys: keys.length > 0 ? keys : defaultKeys(exchangeType, queue) };
  });
}

/** `schema` and `reply` only describe the handler (in the AsyncAPI document); a wrong one still fails at startup. */
function checkDescription(name: string, { schema, reply }: MessageHandlerOptions): void {
  if (typeof schema === 'function') {
    fail(
      name,
      `"schema" must be a JSON Schema object; a class is described from the type of the @Payload() parameter (got class ${(schema as { name: string }).name})`,
    );
  }
  if (schema !== undefined && !isPlainObject(schema)) fail(name, `"schema" must be a JSON Schema object (got ${JSON.stringify(schema)})`);
  if (reply !== undefined && typeof reply !== 'boolean' && typeof reply !== 'function' && !isPlainObject(reply)) {
    fail(name, `"reply" must be true, false, a class or a JSON Schema object (got ${JSON.stringify(reply)})`);
  }
}

function defaultKeys(exchangeType: ExchangeType, queue: string): string[] {
  return exchangeType === 'topic' ? ['#'] : exchangeType === 'direct' ? [queue] : [''];
}

function resolveBatch(name: string, batch: MessageHandlerOptions['batch']): HandlerDefinition['batch'] {
  if (batch === undefined) return undefined;
  const { size, timeoutMs } = (batch ?? {}) as { size?: unknown; timeoutMs?: unknown };
  if (!(Number.isInteger(size) && (size as number) >= 1 && (size as number) <= 65535))
    fail(name, `"batch.size" must be an integer from 1 to 65535 (got ${JSON.stringify(size)})`);
  if (!(Number.isInteger(timeoutMs) && (timeoutMs as number) >= 1 && (timeoutMs as number) <= 2 ** 31 - 1)) {
    fail(name, `"batch.timeoutMs" must be a whole number of milliseconds from 1 (got ${JSON.stringify(timeoutMs)})`);
  }
  return { size: size as number, timeoutMs: timeoutMs as number };
}

export function retryQueueName(definition: HandlerDefinition, delayMs: number): string {
  const instance = definition.broadcast ? `.${definition.queue.slice(definition.queue.lastIndexOf('.') + 1)}` : '';
  return `${policyRetryQueueName(definition.baseQueue, delayMs)}${instance}`;
}

/** The retry queues of a handler's policy, one per delay of policyDelays. */
export function retryQueueNames(definition: HandlerDefinition): string[] {
  return policyDelays(definition.retry).map((delay) => retryQueueName(definition, delay));
}

function policyRetryQueueName(baseQueue: string, delayMs: number): string {
  return `${baseQueue}.retry.${delayMs}ms`;
}

/** The delays a retry policy has a queue for: those of its tries after the first, but 0 (no queue needed). */
export function policyDelays(retry: Required<RetryPolicy> | false): number[] {
  if (!retry) return [];
  return [...new Set(retry.delaysMs.slice(0, retry.attempts - 1))].filter((delay) => delay > 0);
}

export function deadLetterQueueName(definition: Pick<HandlerDefinition, 'baseQueue'>): string {
  return `${definition.baseQueue}.dlq`;
}

/**
 * The queues the module declared for a (non-broadcast) handler on `queue` with these retry delays,
 * in the order they can be deleted: the retry queues (they empty into `queue`), `queue`, its DLQ.
 */
export function removedHandlerQueues(queue: string, retryDelaysMs: readonly number[]): string[] {
  const retries = [...new Set(retryDelaysMs)].filter((delay) => delay > 0).map((delay) => policyRetryQueueName(queue, delay));
  return [...retries, queue, deadLetterQueueName({ baseQueue: queue })];
}
