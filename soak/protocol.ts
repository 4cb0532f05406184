/** What an instance tells the driver (child -> parent over IPC), batched every FLUSH_MS. */
import type { MessageHandlerOptions } from '../lib';

export const FLUSH_MS = 100;

/** The newer features, each with a queue (and a handler group) of its own. */
export const FEATURES = ['settle', 'delayed', 'batch', 'typed', 'keyed', 'idem-redis', 'idem-pg', 'outbox'] as const;
export type Feature = (typeof FEATURES)[number];

/** A message kind: commands go to one queue, events to an exchange with two subscriber groups, each feature to its queue. */
export type Kind = 'command' | 'event' | Feature;
/** Who handled it: the command handler, one of the two event groups, or a feature's handlers. */
export type Handler = 'command' | 'audit' | 'billing' | Feature;
export const HANDLERS: Handler[] = ['command', 'audit', 'billing', ...FEATURES];

/** The groups that must each handle a message of `kind`. */
export function groupsOf(kind: Kind): Handler[] {
  return kind === 'event' ? ['audit', 'billing'] : [kind];
}

/**
 * How a message is meant to end when not by being handled, decided by its producer:
 * `dead-letter` in its queue's `.dlq` (context.deadLetter, or a type no handler of a shared queue
 * takes), `drop` by `context.nack({ requeue: false })`.
 */
export type Design = 'dead-letter' | 'drop';

export interface Confirmed {
  kind: Kind;
  id: string;
  sentAt: number;
  confirmedAt: number;
  design?: Design;
}

export interface Rejected {
  kind: Kind;
  id: string;
  sentAt: number;
  error: string;
}

export interface Handled {
  handler: Handler;
  id: string;
  attempt: number;
}

/** A try that threw on purpose (the message succeeds on a later try). */
export interface FailedTry {
  handler: Handler;
  id: string;
  attempt: number;
  at: number;
}

/** An outbox transaction that did not commit for sure: rolled back on purpose, or failed (COMMIT's outcome unknown). */
export interface OutboxAttempt {
  id: string;
  sentAt: number;
  outcome: 'rolled-back' | string;
}

export interface Batch {
  type: 'batch';
  confirmed: Confirmed[];
  rejected: Rejected[];
  handled: Handled[];
  failed: FailedTry[];
  /** Messages a handler dropped by design (`nack({ requeue: false })` resolved). */
  dropped: Handled[];
  outbox: OutboxAttempt[];
  requests: { answered: number; failed: Record<string, number> };
  /** Outcomes of publishes to a missing exchange the driver asked for, by error name. */
  missingExchange: Record<string, number>;
  /**
   * Figures of the features, by name: settlement calls made in handlers and their outcomes, late
   * calls (after the handler returned) by outcome, delayed messages delivered early, messages a
   * shared queue gave to the wrong handler, duplicates sent on purpose.
   */
  counters: Record<string, number>;
}

export type FromInstance = Batch | { type: 'ready' } | { type: 'idle' } | { type: 'bye' };

/** What the driver tells an instance. */
export type ToInstance = { type: 'stop-producing' } | { type: 'publish-to-missing-exchange' };

/** Names of everything the soak declares, all under one prefix (PostgreSQL tables and Redis keys too). */
export function names(prefix: string) {
  const sqlPrefix = prefix.replace(/-/g, '_');
  return {
    commands: `${prefix}.commands`,
    exchange: `${prefix}.events`,
    audit: `${prefix}.events.audit`,
    billing: `${prefix}.events.billing`,
    rpc: `${prefix}.rpc`,
    missingExchange: `${prefix}.no-such-exchange`,
    routingKey: 'order.created',
    bindingKey: 'order.*',
    keyedExchange: `${prefix}.keyed-events`,
    outboxTable: `${sqlPrefix}_outbox`,
    idempotencyTable: `${sqlPrefix}_idempotency`,
    redisKeyPrefix: `${prefix}:idempotency:`,
    /** The queue of a feature. */
    feature: (feature: Feature) => `${prefix}.${feature}`,
  };
}

/** The retry policy of every soak handler: the delay queues it implies are `<queue>.retry.<d>ms`. */
export const RETRY = { attempts: 4, delaysMs: [200, 800] };

/** Batch handler: up to this many messages, gathered for at most this long. */
export const BATCH = { size: 8, timeoutMs: 100 };

/** The message types of the shared queue picked by type, and the routing keys of the one picked by key. */
export const TYPES = ['alpha', 'beta'] as const;
/** A type no handler of the shared queue takes: dead-lettered with NoHandlerError by design. */
export const UNTAKEN_TYPE = 'gamma';

/**
 * The delays of `SendOptions.delayMs` and `context.retry({ delayMs })`, drawn per run: they name
 * broker-wide delay queues (`messaging.delay.<ms>ms.(default)`), so odd values keep them the soak's.
 */
export interface Delays {
  sendMs: number;
  retryMs: number;
}

/** The type of the soak's handler queues (and so of their retry and dead-letter queues). */
export type QueueType = 'quorum' | 'classic';

/** Every soak handler's options, by name: a shared queue has several. */
export type HandlerName =
  | 'command'
  | 'audit'
  | 'billing'
  | 'rpc'
  | Exclude<Feature, 'typed' | 'keyed'>
  | `typed-${(typeof TYPES)[number]}`
  | `keyed-${(typeof TYPES)[number]}`;

/**
 * The options of the soak's handlers, in one place: the instances decorate their handlers
 * with them, and the fault driver declares a deleted queue again from them, as the module does.
 */
export function handlerOptions(prefix: string, queueType: QueueType): Record<HandlerName, MessageHandlerOptions> {
  const n = names(prefix);
  const queueOptions = queueType === 'quorum' ? { arguments: { 'x-queue-type': 'quorum' } } : {};
  const subscriber = { exchange: n.exchange, routingKey: n.bindingKey, retry: RETRY, queueOptions };
  const feature = (f: Feature, more: MessageHandlerOptions = {}) => ({ queue: n.feature(f), retry: RETRY, queueOptions, ...more });
  return {
    command: { queue: n.commands, retry: RETRY, queueOptions },
    audit: { queue: n.audit, ...subscriber },
    billing: { queue: n.billing, ...subscriber },
    rpc: { queue: n.rpc, retry: false, queueOptions },
    settle: feature('settle'),
    delayed: feature('delayed'),
    batch: feature('batch', { batch: BATCH }),
    'typed-alpha': feature('typed', { messageType: 'alpha' }),
    'typed-beta': feature('typed', { messageType: 'beta' }),
    'keyed-alpha': feature('keyed', { exchange: n.keyedExchange, routingKey: 'k.alpha' }),
    'keyed-beta': feature('keyed', { exchange: n.keyedExchange, routingKey: 'k.beta' }),
    'idem-redis': feature('idem-redis', { idempotent: true }),
    'idem-pg': feature('idem-pg', { idempotent: true }),
    outbox: feature('outbox'),
  };
}
