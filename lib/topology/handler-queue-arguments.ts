import type { MessageHandlerOptions, QueueType } from '../interfaces/message-handler-options.interface';
import { QUEUE_TYPES } from '../messaging.options';

const QUEUE_TYPE = 'x-queue-type';
const DELIVERY_LIMIT = 'x-delivery-limit';

/** What decides a handler queue's arguments besides the handler's own options. */
export interface QueueArgumentsContext {
  /** The module's `queueType`, for handlers that set none. */
  moduleQueueType: QueueType;
  broadcast: boolean;
  durable: boolean;
  /** Where RabbitMQ dead-letters a message past the queue's delivery limit. */
  deadLetterQueue: string;
}

/**
 * The arguments a handler's queue is declared with. Its type is the handler's `queueType` or its
 * own `x-queue-type` argument (one setting spelt two ways: both given, they must agree), else the
 * module's `queueType`; a broadcast handler's queue is exclusive to its instance, which quorum
 * queues cannot be, so it stays classic. A classic queue gets no `x-queue-type`, so queues
 * declared by earlier versions (without it) still match.
 *
 * A quorum queue dead-letters into `<queue>.dlq`, at-least-once, whatever drops a message there:
 * RabbitMQ 4 gives every quorum queue a delivery limit (20 by default) and, without a dead-letter
 * target, removes a message past it. With `x-delivery-limit` given, RabbitMQ counts each
 * message's returns and the module leaves poison messages to it (see brokerCountsDeliveries). The
 * handler's own arguments win over these. `fail` reports a wrong setting, naming the handler.
 */
export function handlerQueueArguments(
  options: MessageHandlerOptions,
  context: QueueArgumentsContext,
  fail: (message: string) => never,
): Record<string, unknown> {
  const given = { ...(options.queueOptions?.arguments ?? {}) };
  const type = queueTypeOf(options, given, context, fail);
  if (type === 'quorum' && !context.durable) {
    fail(
      `quorum queues are durable: "queueOptions.durable: false" needs "queueType: 'classic'"${explicitType(options, given) ? '' : ` (the module's "queueType" is 'quorum')`}`,
    );
  }
  const limit = given[DELIVERY_LIMIT];
  if (limit !== undefined) {
    if (type !== 'quorum')
      fail(
        `"queueOptions.arguments['${DELIVERY_LIMIT}']" needs a quorum queue (RabbitMQ ignores it on classic queues): set "queueType: 'quorum'"`,
      );
    if (!Number.isInteger(limit) || (limit as number) < 0)
      fail(`"queueOptions.arguments['${DELIVERY_LIMIT}']" must be an integer from 0 (got ${JSON.stringify(limit)})`);
  }
  if (type !== 'quorum') return given;
  return { [QUEUE_TYPE]: 'quorum', ...quorumDeadLettering(context.deadLetterQueue), ...given };
}

/**
 * How a quorum queue dead-letters at-least-once. RabbitMQ does so only from a queue with
 * reject-publish overflow; without a length limit it rejects nothing.
 */
export const AT_LEAST_ONCE = { 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' } as const;

/** What a quorum handler queue dead-letters with: into `deadLetterQueue`, at-least-once. */
export function quorumDeadLettering(deadLetterQueue: string): Record<string, unknown> {
  return { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': deadLetterQueue, ...AT_LEAST_ONCE };
}

/**
 * The arguments earlier versions declared a quorum queue without `x-delivery-limit` with (no
 * dead-letter target): RabbitMQ refuses (406) to declare a queue again with other arguments, so a
 * queue declared that way keeps them (see declareHandlerTopology). Undefined when there is no
 * such older form.
 */
export function legacyQueueArguments(
  options: MessageHandlerOptions,
  queueArguments: Record<string, unknown>,
): Record<string, unknown> | undefined {
  const given = options.queueOptions?.arguments ?? {};
  if (queueArguments[QUEUE_TYPE] !== 'quorum' || given[DELIVERY_LIMIT] !== undefined) return undefined;
  const legacy = { [QUEUE_TYPE]: 'quorum', ...given };
  return Object.keys(legacy).length === Object.keys(queueArguments).length ? undefined : legacy;
}

/**
 * Whether RabbitMQ, not the module, bounds the returns of this queue's messages. The module's own
 * count (`maxRedeliveries`) works by sending a fresh copy of a returned message, which would set
 * the broker's count back to zero each time, and the two limits would disagree on when a message
 * is poison: with a broker limit the module counts nothing and handles a redelivery as it comes.
 */
export function brokerCountsDeliveries(queueArguments: Record<string, unknown>): boolean {
  return queueArguments[DELIVERY_LIMIT] !== undefined;
}

function queueTypeOf(
  options: MessageHandlerOptions,
  given: Record<string, unknown>,
  context: QueueArgumentsContext,
  fail: (message: string) => never,
): unknown {
  const { queueType } = options;
  if (queueType !== undefined && !QUEUE_TYPES.includes(queueType))
    fail(`"queueType" must be 'quorum' or 'classic' (got ${JSON.stringify(queueType)})`);
  const argument = given[QUEUE_TYPE];
  if (queueType !== undefined && argument !== undefined && argument !== queueType) {
    fail(`"queueType" is '${queueType}' but "queueOptions.arguments['${QUEUE_TYPE}']" is ${JSON.stringify(argument)}: set one of them`);
  }
  const explicit = explicitType(options, given);
  if (context.broadcast) {
    if (explicit === 'quorum')
      fail(
        `a broadcast handler's queue is exclusive to its instance and quorum queues cannot be: remove "${queueType ? 'queueType' : `queueOptions.arguments['${QUEUE_TYPE}']`}"`,
      );
    return explicit ?? 'classic';
  }
  return explicit ?? context.moduleQueueType;
}

function explicitType(options: MessageHandlerOptions, given: Record<string, unknown>): unknown {
  return options.queueType ?? given[QUEUE_TYPE];
}
