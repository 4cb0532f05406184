import type { MessageHandlerOptions } from '../../lib/interfaces/message-handler-options.interface';
import {
  AT_LEAST_ONCE,
  brokerCountsDeliveries,
  handlerQueueArguments,
  legacyQueueArguments,
  type QueueArgumentsContext,
  quorumDeadLettering,
} from '../../lib/topology/handler-queue-arguments';

/**
 * handlerQueueArguments called directly, with its context spelt out (queue-type.spec.ts covers it
 * through defineHandler and the module options).
 */
class Refused extends Error {}

const CONTEXT: QueueArgumentsContext = { moduleQueueType: 'classic', broadcast: false, durable: true, deadLetterQueue: 'q.dlq' };

function args(options: MessageHandlerOptions, context: Partial<QueueArgumentsContext> = {}): Record<string, unknown> {
  return handlerQueueArguments(options, { ...CONTEXT, ...context }, (message) => {
    throw new Refused(message);
  });
}

function refusal(options: MessageHandlerOptions, context: Partial<QueueArgumentsContext> = {}): string {
  try {
    args(options, context);
  } catch (error) {
    if (error instanceof Refused) return error.message;
    throw error;
  }
  throw new Error('the arguments were accepted');
}

const arg = (queueArguments: Record<string, unknown>, extra: Partial<MessageHandlerOptions> = {}): MessageHandlerOptions => ({
  queue: 'q',
  queueOptions: { arguments: queueArguments },
  ...extra,
});

const QUORUM_DLQ = {
  'x-queue-type': 'quorum',
  'x-dead-letter-exchange': '',
  'x-dead-letter-routing-key': 'q.dlq',
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
};

describe('handlerQueueArguments', () => {
  it.each<[string, MessageHandlerOptions, Partial<QueueArgumentsContext>, Record<string, unknown>]>([
    ['classic by default: no x-queue-type at all', { queue: 'q' }, {}, {}],
    ["classic with the handler's own arguments, as given", arg({ 'x-max-length': 5 }), {}, { 'x-max-length': 5 }],
    ['a classic queue may be non-durable', { queue: 'q' }, { durable: false }, {}],
    ["quorum from the module's queueType", { queue: 'q' }, { moduleQueueType: 'quorum' }, QUORUM_DLQ],
    ["quorum from the handler's queueType", { queue: 'q', queueType: 'quorum' }, {}, QUORUM_DLQ],
    ['quorum from the x-queue-type argument', arg({ 'x-queue-type': 'quorum' }), {}, QUORUM_DLQ],
    [
      'the dead-letter queue named by the context',
      { queue: 'q', queueType: 'quorum' },
      { deadLetterQueue: 'other.dlq' },
      {
        ...QUORUM_DLQ,
        'x-dead-letter-routing-key': 'other.dlq',
      },
    ],
    ["classic by the handler, whatever the module's type", { queue: 'q', queueType: 'classic' }, { moduleQueueType: 'quorum' }, {}],
    // The argument is kept as given: it was asked for explicitly.
    [
      'classic by argument under a quorum module',
      arg({ 'x-queue-type': 'classic' }),
      { moduleQueueType: 'quorum' },
      { 'x-queue-type': 'classic' },
    ],
    [
      'classic by argument, non-durable, under a quorum module',
      arg({ 'x-queue-type': 'classic' }),
      { moduleQueueType: 'quorum', durable: false },
      {
        'x-queue-type': 'classic',
      },
    ],
    [
      'a broadcast queue stays classic under a quorum module',
      { exchange: 'e', broadcast: true },
      { broadcast: true, moduleQueueType: 'quorum' },
      {},
    ],
    [
      "the handler's own arguments win over the quorum defaults",
      arg({ 'x-overflow': 'drop-head', 'x-dead-letter-exchange': 'dlx' }, { queueType: 'quorum' }),
      {},
      {
        ...QUORUM_DLQ,
        'x-overflow': 'drop-head',
        'x-dead-letter-exchange': 'dlx',
      },
    ],
    [
      'a delivery limit of 0 on a quorum queue',
      arg({ 'x-delivery-limit': 0 }, { queueType: 'quorum' }),
      {},
      { ...QUORUM_DLQ, 'x-delivery-limit': 0 },
    ],
  ])('%s', (_label, options, context, expected) => {
    expect(args(options, context)).toEqual(expected);
  });

  it("never changes the handler's own arguments object", () => {
    const own = { 'x-max-length': 5 };
    const result = args(arg(own, { queueType: 'quorum' }));
    result['x-max-length'] = 6;
    expect(own).toEqual({ 'x-max-length': 5 });
    expect(args(arg(own))).not.toBe(own);
  });

  it.each<[string, MessageHandlerOptions, Partial<QueueArgumentsContext>, string]>([
    ['an unknown queueType', { queue: 'q', queueType: 'stream' as never }, {}, `"queueType" must be 'quorum' or 'classic' (got "stream")`],
    [
      'queueType and x-queue-type that disagree',
      arg({ 'x-queue-type': 'quorum' }, { queueType: 'classic' }),
      {},
      `"queueType" is 'classic' but "queueOptions.arguments['x-queue-type']" is "quorum": set one of them`,
    ],
    [
      'a broadcast quorum queue by queueType',
      { exchange: 'e', broadcast: true, queueType: 'quorum' },
      { broadcast: true },
      `a broadcast handler's queue is exclusive to its instance and quorum queues cannot be: remove "queueType"`,
    ],
    [
      'a broadcast quorum queue by argument',
      arg({ 'x-queue-type': 'quorum' }, { broadcast: true }),
      { broadcast: true },
      `a broadcast handler's queue is exclusive to its instance and quorum queues cannot be: remove "queueOptions.arguments['x-queue-type']"`,
    ],
    [
      'a non-durable quorum queue asked for by the handler',
      { queue: 'q', queueType: 'quorum' },
      { durable: false },
      `quorum queues are durable: "queueOptions.durable: false" needs "queueType: 'classic'"`,
    ],
    [
      "a non-durable queue under the module's quorum type",
      { queue: 'q' },
      { durable: false, moduleQueueType: 'quorum' },
      `quorum queues are durable: "queueOptions.durable: false" needs "queueType: 'classic'" (the module's "queueType" is 'quorum')`,
    ],
    [
      'a delivery limit on a classic queue',
      arg({ 'x-delivery-limit': 3 }),
      {},
      `"queueOptions.arguments['x-delivery-limit']" needs a quorum queue (RabbitMQ ignores it on classic queues): set "queueType: 'quorum'"`,
    ],
    ['a negative delivery limit', arg({ 'x-delivery-limit': -1 }, { queueType: 'quorum' }), {}, 'must be an integer from 0 (got -1)'],
    ['a fractional delivery limit', arg({ 'x-delivery-limit': 2.5 }, { queueType: 'quorum' }), {}, 'must be an integer from 0 (got 2.5)'],
    [
      'a delivery limit given as a string',
      arg({ 'x-delivery-limit': '3' }, { queueType: 'quorum' }),
      {},
      'must be an integer from 0 (got "3")',
    ],
  ])('refuses %s through `fail`', (_label, options, context, message) => {
    expect(refusal(options, context)).toContain(message);
  });
});

describe('quorumDeadLettering', () => {
  it('dead-letters through the default exchange into the given queue, at-least-once with reject-publish overflow', () => {
    expect(quorumDeadLettering('orders.dlq')).toEqual({
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'orders.dlq',
      ...AT_LEAST_ONCE,
    });
    // RabbitMQ dead-letters at-least-once only from a queue with reject-publish overflow.
    expect(AT_LEAST_ONCE).toEqual({ 'x-dead-letter-strategy': 'at-least-once', 'x-overflow': 'reject-publish' });
  });
});

describe('legacyQueueArguments', () => {
  it.each<[string, MessageHandlerOptions, Record<string, unknown> | undefined]>([
    ['a classic queue has no older form', { queue: 'q' }, undefined],
    ['a quorum queue was declared with its type alone', { queue: 'q', queueType: 'quorum' }, { 'x-queue-type': 'quorum' }],
    [
      'with its own arguments beside the type',
      arg({ 'x-max-length': 9 }, { queueType: 'quorum' }),
      { 'x-queue-type': 'quorum', 'x-max-length': 9 },
    ],
    // A delivery limit always came with the dead-letter target: nothing older to match.
    ['a quorum queue with a delivery limit', arg({ 'x-delivery-limit': 3 }, { queueType: 'quorum' }), undefined],
    // Its own arguments name every one of ours: both forms are the same declaration.
    ['a queue whose own arguments are the whole set', arg(QUORUM_DLQ), undefined],
  ])('%s', (_label, options, expected) => {
    expect(legacyQueueArguments(options, args(options))).toEqual(expected);
  });
});

describe('brokerCountsDeliveries', () => {
  it.each([
    [{ 'x-delivery-limit': 3 }, true],
    [{ 'x-delivery-limit': 0 }, true],
    [QUORUM_DLQ, false],
    [{}, false],
  ])('%j: %s', (queueArguments, expected) => {
    expect(brokerCountsDeliveries(queueArguments)).toBe(expected);
  });
});
