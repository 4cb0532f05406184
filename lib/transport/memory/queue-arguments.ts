import type { QueueOptions } from '../transport.interface';
import { printValue, sameFieldValue, wireType } from './field-table';
import { inequivalent, preconditionFailed, resourceName } from './refusals';

export type Overflow = 'drop-head' | 'reject-publish' | 'reject-publish-dlx';
export type QueueType = 'classic' | 'quorum';

/** What a queue.declare asked for, with amqplib's defaults filled in. */
export interface QueueDeclaration {
  durable: boolean;
  exclusive: boolean;
  autoDelete: boolean;
  arguments: Record<string, unknown>;
}

/** The arguments the memory broker acts on, validated. */
export interface QueueSettings {
  type: QueueType;
  messageTtl?: number;
  expires?: number;
  deadLetterExchange?: string;
  deadLetterRoutingKey?: string;
  maxLength?: number;
  maxLengthBytes?: number;
  overflow: Overflow;
  deliveryLimit?: number;
}

export function declarationOf(options: QueueOptions = {}): QueueDeclaration {
  return {
    durable: options.durable ?? true,
    exclusive: options.exclusive ?? false,
    autoDelete: options.autoDelete ?? false,
    arguments: { ...options.arguments },
  };
}

/** RabbitMQ 4's delivery limit of a quorum queue declared without `x-delivery-limit`. */
const QUORUM_DEFAULT_DELIVERY_LIMIT = 20;

/** The arguments whose value a redeclare must repeat (RabbitMQ's list for classic and quorum queues). */
const CHECKED = [
  'x-message-ttl',
  'x-expires',
  'x-dead-letter-exchange',
  'x-dead-letter-routing-key',
  'x-max-length',
  'x-max-length-bytes',
  'x-overflow',
  'x-max-priority',
  'x-queue-type',
  'x-delivery-limit',
  'x-dead-letter-strategy',
];

/** Absent counts as this value, when comparing and in the refusal's text. */
const IMPLIED: Record<string, unknown> = { 'x-queue-type': 'classic' };

/** Refuses a redeclare that differs from the queue as it is, in the order RabbitMQ checks. */
export function assertEquivalent(name: string, current: QueueDeclaration, requested: QueueDeclaration): void {
  if (current.durable !== requested.durable) {
    throw inequivalent('durable', 'queue', name, `'${requested.durable}'`, `'${current.durable}'`);
  }
  if (current.autoDelete !== requested.autoDelete) {
    throw inequivalent('auto_delete', 'queue', name, `'${requested.autoDelete}'`, `'${current.autoDelete}'`);
  }
  for (const key of CHECKED) {
    // RabbitMQ 4 fills in the queue type on both sides (3.x printed an absent one as "none").
    const was = current.arguments[key] ?? IMPLIED[key];
    const now = requested.arguments[key] ?? IMPLIED[key];
    if (equivalent(was, now)) continue;
    const print = (value: unknown, other: unknown) =>
      value === undefined
        ? 'none'
        : other === undefined
          ? `the value ${printValue(value)} of type '${wireType(value)}'`
          : printValue(value);
    throw inequivalent(key, 'queue', name, print(now, was), print(was, now));
  }
}

function equivalent(a: unknown, b: unknown): boolean {
  if (a === undefined || b === undefined) return a === b;
  return sameFieldValue(a, b);
}

/** Validates a new queue's declaration and reads what the broker acts on. */
export function settingsOf(name: string, declaration: QueueDeclaration): QueueSettings {
  const args = declaration.arguments;
  const invalid = (key: string, why: string) => preconditionFailed(`invalid arg '${key}' for ${resourceName('queue', name)}: ${why}`);
  const integer = (key: string, allowZero: boolean): number | undefined => {
    const value = args[key];
    if (value === undefined) return undefined;
    const type = wireType(value);
    if (typeof value !== 'number' || type === 'double') throw invalid(key, `{unacceptable_type,${type}}`);
    if (value < 0) throw invalid(key, `{value_negative,${value}}`);
    if (value === 0 && !allowZero) throw invalid(key, `{value_zero,0}`);
    return value;
  };
  const text = (key: string): string | undefined => {
    const value = args[key];
    if (value === undefined || typeof value === 'string') return value;
    throw invalid(key, `{unacceptable_type,${wireType(value)}}`);
  };

  const type = (text('x-queue-type') ?? 'classic') as QueueType;
  if (type !== 'classic' && type !== 'quorum') throw invalid('x-queue-type', `the memory broker has no '${type}' queues`);
  // RabbitMQ 4.3 removed classic queue storage v1 (lazy mode with it): quorum queues never took these.
  const removed = args['x-queue-mode'] !== undefined ? 'x-queue-mode' : args['x-queue-version'] === 1 ? 'x-queue-version' : undefined;
  if (removed) throw preconditionFailed(`invalid arg '${removed}' for ${resourceName('queue', name)} of queue type rabbit_${type}_queue`);
  if (type === 'quorum') {
    const property = !declaration.durable
      ? 'non-durable'
      : declaration.autoDelete
        ? 'auto-delete'
        : declaration.exclusive
          ? 'exclusive-owner'
          : undefined;
    if (property) throw preconditionFailed(`invalid property '${property}' for ${resourceName('queue', name)}`);
  }
  const overflow = (text('x-overflow') ?? 'drop-head') as Overflow;
  if (!['drop-head', 'reject-publish', 'reject-publish-dlx'].includes(overflow)) throw invalid('x-overflow', 'invalid_overflow');
  const deadLetterExchange = text('x-dead-letter-exchange');
  const deadLetterRoutingKey = text('x-dead-letter-routing-key');
  if (deadLetterRoutingKey !== undefined && deadLetterExchange === undefined) {
    throw invalid('x-dead-letter-routing-key', 'routing_key_but_no_dlx_defined');
  }
  return {
    type,
    messageTtl: integer('x-message-ttl', true),
    expires: integer('x-expires', false),
    deadLetterExchange,
    deadLetterRoutingKey,
    maxLength: integer('x-max-length', true),
    maxLengthBytes: integer('x-max-length-bytes', true),
    overflow,
    // RabbitMQ 4 gives every quorum queue a delivery limit; 3.x had none unless asked for.
    deliveryLimit: type === 'quorum' ? (integer('x-delivery-limit', true) ?? QUORUM_DEFAULT_DELIVERY_LIMIT) : undefined,
  };
}
