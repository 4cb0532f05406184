/** What an instance tells the driver (child -> parent over IPC), batched every FLUSH_MS. */
import type { MessageHandlerOptions } from '../lib';

export const FLUSH_MS = 100;

/** A message kind: commands go to one queue, events to an exchange with two subscriber groups. */
export type Kind = 'command' | 'event';
/** Who handled it: the command handler or one of the two event groups. */
export type Handler = 'command' | 'audit' | 'billing';

export interface Confirmed {
  kind: Kind;
  id: string;
  sentAt: number;
  confirmedAt: number;
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

export interface Batch {
  type: 'batch';
  confirmed: Confirmed[];
  rejected: Rejected[];
  handled: Handled[];
  failed: FailedTry[];
  requests: { answered: number; failed: Record<string, number> };
  /** Outcomes of publishes to a missing exchange the driver asked for, by error name. */
  missingExchange: Record<string, number>;
}

export type FromInstance = Batch | { type: 'ready' } | { type: 'idle' } | { type: 'bye' };

/** What the driver tells an instance. */
export type ToInstance = { type: 'stop-producing' } | { type: 'publish-to-missing-exchange' };

/** Names of everything the soak declares, all under one prefix. */
export function names(prefix: string) {
  return {
    commands: `${prefix}.commands`,
    exchange: `${prefix}.events`,
    audit: `${prefix}.events.audit`,
    billing: `${prefix}.events.billing`,
    rpc: `${prefix}.rpc`,
    missingExchange: `${prefix}.no-such-exchange`,
    routingKey: 'order.created',
    bindingKey: 'order.*',
  };
}

/** The retry policy of every soak handler: the delay queues it implies are `<queue>.retry.<d>ms`. */
export const RETRY = { attempts: 4, delaysMs: [200, 800] };

/** The type of the soak's handler queues (and so of their retry and dead-letter queues). */
export type QueueType = 'quorum' | 'classic';

/**
 * The options of the soak's handlers, in one place: the instances decorate their handlers
 * with them, and the fault driver declares a deleted queue again from them, as the module does.
 */
export function handlerOptions(prefix: string, queueType: QueueType): Record<Handler | 'rpc', MessageHandlerOptions> {
  const n = names(prefix);
  const queueOptions = queueType === 'quorum' ? { arguments: { 'x-queue-type': 'quorum' } } : {};
  const subscriber = { exchange: n.exchange, routingKey: n.bindingKey, retry: RETRY, queueOptions };
  return {
    command: { queue: n.commands, retry: RETRY, queueOptions },
    audit: { queue: n.audit, ...subscriber },
    billing: { queue: n.billing, ...subscriber },
    rpc: { queue: n.rpc, retry: false, queueOptions },
  };
}
