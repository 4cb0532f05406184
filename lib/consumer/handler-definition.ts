import type { ExchangeType, MessageHandlerOptions } from '../interfaces/message-handler-options.interface';
import type { RetryPolicy } from '../interfaces/messaging-options.interface';
import { MessagingConfigError } from '../messaging.errors';
import { resolveRetry, type ResolvedMessagingOptions } from '../messaging.options';

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
}

const EXCHANGE_TYPES: ExchangeType[] = ['topic', 'direct', 'fanout', 'headers'];

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
  const exchange = options.exchange === undefined ? undefined : checkName(name, 'exchange', options.exchange);
  if (broadcast && !exchange) fail(name, '"broadcast: true" needs an "exchange" to bind the per-instance queue to');
  if (!broadcast && options.queue === undefined) fail(name, '"queue" is required unless "broadcast" is true');
  const exchangeType = options.exchangeType ?? 'topic';
  if (!EXCHANGE_TYPES.includes(exchangeType)) fail(name, `"exchangeType" must be one of ${EXCHANGE_TYPES.join(', ')} (got ${JSON.stringify(exchangeType)})`);
  const prefetch = options.prefetch ?? module.prefetch;
  if (!Number.isInteger(prefetch) || prefetch < 1 || prefetch > 65535) fail(name, `"prefetch" must be an integer from 1 to 65535 (got ${prefetch})`);
  const baseQueue = options.queue === undefined ? `${exchange}.${module.serviceName}` : checkName(name, 'queue', options.queue);
  const queue = broadcast ? `${baseQueue}.broadcast.${instanceId}` : baseQueue;

  const keys = options.routingKey === undefined ? [] : Array.isArray(options.routingKey) ? options.routingKey : [options.routingKey];
  if (keys.some((k) => typeof k !== 'string')) fail(name, '"routingKey" must be a string or an array of strings');
  const routingKeys =
    keys.length > 0 || !exchange ? keys : exchangeType === 'topic' ? ['#'] : exchangeType === 'direct' ? [baseQueue] : [''];
  if (keys.length > 0 && !exchange) fail(name, '"routingKey" needs an "exchange" (without one the queue is reached by its name)');

  const queueOptions = options.queueOptions ?? {};
  if (typeof queueOptions !== 'object' || queueOptions === null) fail(name, '"queueOptions" must be an object');
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
    durable: broadcast ? false : queueOptions.durable ?? true,
    queueArguments: { ...(queueOptions.arguments ?? {}) },
  };
}

export function retryQueueName(definition: HandlerDefinition, delayMs: number): string {
  return `${definition.baseQueue}.retry.${delayMs}ms${definition.broadcast ? `.${definition.queue.slice(definition.queue.lastIndexOf('.') + 1)}` : ''}`;
}

export function deadLetterQueueName(definition: Pick<HandlerDefinition, 'baseQueue'>): string {
  return `${definition.baseQueue}.dlq`;
}
