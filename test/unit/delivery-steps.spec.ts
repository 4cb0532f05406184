import { CodecRegistry } from '../../lib/codec/codec-registry';
import { Delivery } from '../../lib/consumer/delivery';
import { SettleByResult } from '../../lib/consumer/delivery-step';
import { IdempotencyGuard } from '../../lib/consumer/idempotency-guard';
import type { MessageOutcome } from '../../lib/consumer/message-outcome';
import { MemoryIdempotencyStore } from '../../lib/idempotency/memory-idempotency.store';
import { resolveOptions } from '../../lib/messaging.options';
import { NOOP_TELEMETRY } from '../../lib/telemetry/noop.telemetry';
import type { HandlerDefinition } from '../../lib/topology/handler-definition';
import type { AckBatcher } from '../../lib/consumer/ack-batcher';
import type { Message } from '../../lib/transport/transport.interface';

/**
 * The steps that run a handler's call and settle its delivery, without a broker: the last one
 * settles by what the call gives, and the idempotency guard, a step before it, decides whether the
 * call runs at all and records a success before the settlement it hands on.
 */

/** What MessageOutcome was asked to do, in order. */
function recordingOutcome(log: string[]) {
  return {
    succeeded: (_delivery: Delivery, result: unknown) => void log.push(`succeeded ${JSON.stringify(result)}`),
    failed: (_delivery: Delivery, error: unknown) => void log.push(`failed ${(error as Error).message}`),
    sendBack: async () => void log.push('sent back'),
  } as unknown as MessageOutcome;
}

function delivery(properties: Partial<Message['properties']> = {}): Delivery {
  const msg = {
    content: Buffer.from('{}'),
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q', consumerTag: 'c' },
    properties: { headers: {}, ...properties },
  } as unknown as Message;
  return new Delivery(msg, {} as AckBatcher);
}

describe('SettleByResult', () => {
  it.each([
    ['a value', () => 42, 'succeeded 42'],
    ['a resolved promise', () => Promise.resolve('ok'), 'succeeded "ok"'],
    [
      'a throw',
      () => {
        throw new Error('boom');
      },
      'failed boom',
    ],
    ['a rejected promise', () => Promise.reject(new Error('later')), 'failed later'],
  ])('settles %s', async (_what, call, expected) => {
    const log: string[] = [];
    await new SettleByResult(recordingOutcome(log)).run(delivery(), 1, call);
    expect(log).toEqual([expected]);
  });

  it('settles a synchronous result in the same tick, with no promise in between', () => {
    const log: string[] = [];
    const settled = new SettleByResult(recordingOutcome(log)).run(delivery(), 1, () => 'now');
    expect(settled).toBeUndefined();
    expect(log).toEqual(['succeeded "now"']);
  });
});

describe('IdempotencyGuard as a step before SettleByResult', () => {
  const options = resolveOptions({ uri: 'memory://', idempotency: { storeTimeoutMs: 1000 } });
  const definition = { name: 'Test.handle', queue: 'q' } as HandlerDefinition;
  const logger = { warn: () => undefined } as never;

  function guard(store = new MemoryIdempotencyStore(), reconnect = options.reconnect, log: string[] = [], outcome = recordingOutcome(log)) {
    const step = new IdempotencyGuard(
      definition,
      new SettleByResult(outcome),
      outcome,
      options.idempotency,
      reconnect,
      store,
      new CodecRegistry([], undefined, 1 << 20),
      NOOP_TELEMETRY,
      logger,
    );
    return { step, log, store };
  }

  it('runs a message once: a copy with the same id is settled as a success without its handler', async () => {
    const { step, log } = guard();
    let calls = 0;
    await step.run(delivery({ messageId: 'm-1' }), 1, () => ++calls);
    await step.run(delivery({ messageId: 'm-1' }), 1, () => ++calls);
    expect(calls).toBe(1);
    expect(log).toEqual(['succeeded 1', 'succeeded undefined']);
  });

  it('gives a request copy the first run’s reply, decoded, without running the handler', async () => {
    const { step, log } = guard();
    await step.run(delivery({ messageId: 'm-2', replyTo: 'amq.rabbitmq.reply-to' }), 1, () => ({ total: 3 }));
    await step.run(delivery({ messageId: 'm-2', replyTo: 'amq.rabbitmq.reply-to' }), 1, () => {
      throw new Error('must not run');
    });
    expect(log).toEqual(['succeeded {"total":3}', 'succeeded {"total":3}']);
  });

  it('records a success before handing it on to be settled', async () => {
    const store = new MemoryIdempotencyStore();
    // A store that takes its time to write, as a remote one does.
    const complete = store.complete.bind(store);
    store.complete = async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return complete(...args);
    };
    const log: string[] = [];
    const outcome = {
      ...recordingOutcome(log),
      succeeded: async () => {
        // The ack comes after the record: a crash in between makes the redelivery a duplicate.
        const claim = await store.claim('q:m-3', 'another', 60_000);
        log.push(`settled while the store says ${claim.state}`);
      },
    } as unknown as MessageOutcome;
    const { step } = guard(store, options.reconnect, log, outcome);
    await step.run(delivery({ messageId: 'm-3' }), 1, () => 'done');
    expect(log).toEqual(['settled while the store says done']);
  });

  it('releases the claim of a failed run, so its retry runs the handler', async () => {
    const { step, log } = guard();
    let calls = 0;
    await step.run(delivery({ messageId: 'm-4' }), 1, () => {
      calls++;
      throw new Error('try again');
    });
    await step.run(delivery({ messageId: 'm-4' }), 2, () => ++calls);
    expect(calls).toBe(2);
    expect(log).toEqual(['failed try again', 'succeeded 2']);
  });

  it('hands a message without an id straight on: it always runs', async () => {
    const { step, log } = guard();
    await step.run(delivery(), 1, () => 'a');
    await step.run(delivery(), 1, () => 'b');
    expect(log).toEqual(['succeeded "a"', 'succeeded "b"']);
  });

  it('sends a message back, uncounted, when the store cannot be reached; the handler does not run', async () => {
    const broken = new MemoryIdempotencyStore();
    broken.claim = () => Promise.reject(new Error('store down'));
    const fast = resolveOptions({ uri: 'memory://', reconnect: { initialDelayMs: 1, maxDelayMs: 1 } }).reconnect;
    const { step, log } = guard(broken, fast);
    await step.run(delivery({ messageId: 'm-5' }), 1, () => {
      throw new Error('must not run');
    });
    expect(log).toEqual(['sent back']);
  });
});
