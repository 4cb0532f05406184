import { MessagingConfigError, type MessageHandlerOptions, type MessagingOptions } from '../../lib';
import { resolveOptions } from '../../lib/messaging.options';
import { defineHandler } from '../../lib/topology/handler-definition';
import { brokerCountsDeliveries } from '../../lib/topology/handler-queue-arguments';

/** A quorum handler queue of queue `q`: it dead-letters into q.dlq, at-least-once, whatever removes a message. */
const QUORUM = {
  'x-queue-type': 'quorum',
  'x-dead-letter-exchange': '',
  'x-dead-letter-routing-key': 'q.dlq',
  'x-dead-letter-strategy': 'at-least-once',
  'x-overflow': 'reject-publish',
};

function definition(handler: MessageHandlerOptions, module: Partial<MessagingOptions> = {}) {
  return defineHandler('H.handle', handler, resolveOptions({ uri: 'amqp://x', ...module }), 'i1');
}

function queueArguments(handler: MessageHandlerOptions, module: Partial<MessagingOptions> = {}): Record<string, unknown> {
  return definition(handler, module).queueArguments;
}

function refusal(handler: MessageHandlerOptions, module: Partial<MessagingOptions> = {}): string {
  try {
    queueArguments(handler, module);
  } catch (error) {
    expect(error).toBeInstanceOf(MessagingConfigError);
    return (error as Error).message;
  }
  throw new Error('the handler was accepted');
}

describe('queue type', () => {
  it('is classic by default, declared without x-queue-type so queues of earlier versions still match', () => {
    expect(resolveOptions({ uri: 'amqp://x' }).queueType).toBe('classic');
    expect(queueArguments({ queue: 'q' })).toEqual({});
    expect(queueArguments({ queue: 'q', queueType: 'classic' }, { queueType: 'quorum' })).toEqual({});
  });

  it("comes from the module's queueType, overridden per handler by queueType or x-queue-type", () => {
    expect(queueArguments({ queue: 'q' }, { queueType: 'quorum' })).toEqual(QUORUM);
    expect(queueArguments({ queue: 'q', queueType: 'quorum' })).toEqual(QUORUM);
    // queueType is the same setting as the argument: both give the same declaration.
    expect(queueArguments({ queue: 'q', queueOptions: { arguments: { 'x-queue-type': 'quorum' } } })).toEqual(QUORUM);
    expect(queueArguments({ queue: 'q', queueOptions: { arguments: { 'x-queue-type': 'classic' } } }, { queueType: 'quorum' })).toEqual({
      'x-queue-type': 'classic',
    });
  });

  it('leaves broadcast per-instance queues classic (quorum queues cannot be exclusive)', () => {
    expect(queueArguments({ exchange: 'e', broadcast: true }, { queueType: 'quorum' })).toEqual({});
    expect(refusal({ exchange: 'e', broadcast: true, queueType: 'quorum' })).toContain('remove "queueType"');
  });

  it('refuses a wrong value, naming the option', () => {
    expect(() => resolveOptions({ uri: 'amqp://x', queueType: 'stream' as never })).toThrow(
      `MessagingModule option "queueType" must be 'quorum' or 'classic' (got "stream")`,
    );
    expect(refusal({ queue: 'q', queueType: 'Quorum' as never })).toBe(
      `@MessageHandler on H.handle: "queueType" must be 'quorum' or 'classic' (got "Quorum")`,
    );
  });

  it('refuses queueType and x-queue-type that disagree, naming both', () => {
    expect(refusal({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-queue-type': 'classic' } } })).toBe(
      `@MessageHandler on H.handle: "queueType" is 'quorum' but "queueOptions.arguments['x-queue-type']" is "classic": set one of them`,
    );
    expect(queueArguments({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-queue-type': 'quorum' } } })).toEqual(QUORUM);
  });

  it('refuses a non-durable quorum queue, saying where quorum came from', () => {
    expect(refusal({ queue: 'q', queueType: 'quorum', queueOptions: { durable: false } })).toBe(
      `@MessageHandler on H.handle: quorum queues are durable: "queueOptions.durable: false" needs "queueType: 'classic'"`,
    );
    expect(refusal({ queue: 'q', queueOptions: { durable: false } }, { queueType: 'quorum' })).toContain(
      `(the module's "queueType" is 'quorum')`,
    );
  });
});

describe('quorum dead-lettering (RabbitMQ 4 removes a message past its default delivery limit without a target)', () => {
  it('every quorum handler queue dead-letters into its .dlq; its own arguments win', () => {
    expect(
      queueArguments({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-overflow': 'drop-head', 'x-max-length': 10 } } }),
    ).toEqual({
      ...QUORUM,
      'x-overflow': 'drop-head',
      'x-max-length': 10,
    });
  });

  it('keeps the form earlier versions declared a quorum queue with (no target), for a queue declared so', () => {
    expect(definition({ queue: 'q', queueType: 'quorum' }).legacyQueueArguments).toEqual({ 'x-queue-type': 'quorum' });
    expect(
      definition({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-max-length': 10 } } }).legacyQueueArguments,
    ).toEqual({
      'x-queue-type': 'quorum',
      'x-max-length': 10,
    });
    // Nothing older to fall back to: classic queues, queues with a delivery limit (always had the
    // target), queues whose own arguments already name every one of ours.
    expect(definition({ queue: 'q' }).legacyQueueArguments).toBeUndefined();
    expect(
      definition({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-delivery-limit': 3 } } }).legacyQueueArguments,
    ).toBeUndefined();
    expect(definition({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: QUORUM } }).legacyQueueArguments).toBeUndefined();
  });
});

describe('x-delivery-limit', () => {
  it('makes the quorum queue dead-letter past the limit into <queue>.dlq, at-least-once, and the broker the one counting', () => {
    const args = queueArguments({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-delivery-limit': 3 } } });
    expect(args).toEqual({
      'x-queue-type': 'quorum',
      'x-delivery-limit': 3,
      'x-dead-letter-exchange': '',
      'x-dead-letter-routing-key': 'q.dlq',
      'x-dead-letter-strategy': 'at-least-once',
      'x-overflow': 'reject-publish',
    });
    expect(brokerCountsDeliveries(args)).toBe(true);
    expect(brokerCountsDeliveries(queueArguments({ queue: 'q', queueType: 'quorum' }))).toBe(false);
  });

  it("keeps the handler's own dead-lettering arguments", () => {
    const args = queueArguments(
      { queue: 'q', queueOptions: { arguments: { 'x-delivery-limit': 3, 'x-dead-letter-routing-key': 'elsewhere' } } },
      { queueType: 'quorum' },
    );
    expect(args['x-dead-letter-routing-key']).toBe('elsewhere');
  });

  it('is refused on a classic queue and when it is not a count', () => {
    expect(refusal({ queue: 'q', queueOptions: { arguments: { 'x-delivery-limit': 3 } } })).toBe(
      `@MessageHandler on H.handle: "queueOptions.arguments['x-delivery-limit']" needs a quorum queue (RabbitMQ ignores it on classic queues): set "queueType: 'quorum'"`,
    );
    expect(refusal({ queue: 'q', queueType: 'quorum', queueOptions: { arguments: { 'x-delivery-limit': -1 } } })).toContain(
      'must be an integer from 0 (got -1)',
    );
  });
});
