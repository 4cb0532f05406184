/**
 * The handlers of the newer features, one queue each: explicit settlement (and late calls after
 * the handler returned), delayed sends, a batch handler, two queues shared by handlers picked by
 * message type and by routing key, idempotent handlers on Redis and on PostgreSQL, and the
 * outbox's target.
 */
import { Injectable, type Type } from '@nestjs/common';
import { MessageHandler, SettlementError, type MessageContext, type MessageHandlerOptions } from '../lib';
import { failFirstTry, handle, handled, TransientFailure, type Payload } from './handler-tries';
import { count, errorName, report } from './instance-report';
import type { Delays, HandlerName } from './protocol';

/** How early a delayed message may arrive and still count as on time (clocks of one machine; timers are coarse). */
const DELAY_TOLERANCE_MS = 50;
/** After the handler returned, how long until it calls a settlement method anyway. */
const LATE_CALL_MS = 20;

export function featureHandlers(options: Record<HandlerName, MessageHandlerOptions>, delays: Delays): Type {
  /** Per process, the messages nacked back to their queue once already (a copy may come back here with its flag cleared). */
  const requeued = new Set<string>();

  @Injectable()
  class FeatureHandlers {
    /** Each mode settles through the context; the first call decides, whatever the handler then does. */
    @MessageHandler(options.settle)
    async settle(payload: Payload, context: MessageContext) {
      const counters = report().counters;
      const id = context.messageId!;
      switch (payload.mode) {
        case 'ack-early':
          await context.ack();
          return handled('settle', context);
        case 'ack-then-throw':
          await context.ack();
          handled('settle', context);
          throw new TransientFailure('thrown after context.ack(): must not count');
        case 'nack-requeue':
          if (!context.redelivered && !requeued.has(id)) {
            requeued.add(id);
            count(counters, 'settle nack(requeue) calls');
            return context.nack({ requeue: true });
          }
          return handled('settle', context);
        case 'retry-delay':
          if (context.attempt === 1) {
            count(counters, 'settle retry(delayMs) calls');
            return context.retry({ delayMs: delays.retryMs });
          }
          return handled('settle', context);
        case 'dead-letter':
          count(counters, 'settle deadLetter calls');
          return context.deadLetter('dead-lettered by design');
        case 'drop':
          await context.nack({ requeue: false });
          report().dropped.push({ handler: 'settle', id, attempt: context.attempt });
          return;
        default:
          // After it returns or throws, the message is settled: a call then must be refused.
          try {
            handle('settle', payload, context);
          } finally {
            setTimeout(() => void lateCall(context), LATE_CALL_MS);
          }
      }
    }

    @MessageHandler(options.delayed)
    delayed(payload: Payload, context: MessageContext) {
      if (context.attempt === 1 && Date.now() < payload.sentAt! + delays.sendMs - DELAY_TOLERANCE_MS)
        count(report().counters, 'delayed delivered early');
      handle('delayed', payload, context);
    }

    /**
     * Messages meant to be retried are settled one by one first (`contexts[i].retry`); then a batch
     * with a message meant to fail once throws as a whole: each of the others follows the retry policy.
     */
    @MessageHandler(options.batch)
    async batch(payloads: Payload[], contexts: MessageContext[]) {
      count(report().counters, 'batch calls');
      const retried = payloads.map((p, i) => p.mode === 'retry-delay' && contexts[i].attempt === 1);
      for (const [i, context] of contexts.entries()) {
        if (!retried[i]) continue;
        count(report().counters, 'batch contexts[i].retry(delayMs) calls');
        await context.retry({ delayMs: delays.retryMs });
      }
      const rest = contexts.filter((_, i) => !retried[i]);
      const failing = payloads.findIndex((p, i) => p.failFirst && contexts[i].attempt === 1 && !retried[i]);
      if (failing >= 0) {
        for (const context of rest)
          report().failed.push({ handler: 'batch', id: context.messageId!, attempt: context.attempt, at: Date.now() });
        throw new TransientFailure(`batch fails the first try of ${contexts[failing].messageId}`);
      }
      for (const context of rest) handled('batch', context);
    }

    @MessageHandler(options['typed-alpha'])
    typedAlpha(payload: Payload, context: MessageContext) {
      routed('typed', 'alpha', context.raw.properties.type, payload, context);
    }

    @MessageHandler(options['typed-beta'])
    typedBeta(payload: Payload, context: MessageContext) {
      routed('typed', 'beta', context.raw.properties.type, payload, context);
    }

    @MessageHandler(options['keyed-alpha'])
    keyedAlpha(payload: Payload, context: MessageContext) {
      routed('keyed', 'alpha', context.routingKey.slice('k.'.length), payload, context);
    }

    @MessageHandler(options['keyed-beta'])
    keyedBeta(payload: Payload, context: MessageContext) {
      routed('keyed', 'beta', context.routingKey.slice('k.'.length), payload, context);
    }

    @MessageHandler(options['idem-redis'])
    idemRedis(payload: Payload, context: MessageContext) {
      handle('idem-redis', payload, context);
    }

    @MessageHandler(options['idem-pg'])
    idemPg(payload: Payload, context: MessageContext) {
      handle('idem-pg', payload, context);
    }

    @MessageHandler(options.outbox)
    outbox(payload: Payload, context: MessageContext) {
      handle('outbox', payload, context);
    }
  }
  return FeatureHandlers;
}

/** A handler of a shared queue: counts a message meant for another handler of the queue. */
function routed(group: 'typed' | 'keyed', takes: string, meantFor: string | undefined, payload: Payload, context: MessageContext): void {
  if (meantFor !== takes) count(report().counters, `${group} given to the wrong handler`);
  failFirstTry(group, payload, context);
  handled(group, context);
}

/** A settlement call after the handler returned (its message is settled): must throw SettlementError. */
async function lateCall(context: MessageContext): Promise<void> {
  const calls = {
    ack: () => context.ack(),
    'nack(requeue)': () => context.nack({ requeue: true }),
    'nack(drop)': () => context.nack({ requeue: false }),
    retry: () => context.retry({ delayMs: 100 }),
    deadLetter: () => context.deadLetter('late'),
  };
  const names = Object.keys(calls) as Array<keyof typeof calls>;
  const name = names[Math.floor(Math.random() * names.length)];
  let outcome: string;
  try {
    await calls[name]();
    outcome = 'accepted';
  } catch (error) {
    outcome = error instanceof SettlementError ? 'SettlementError' : `threw ${errorName(error)}`;
  }
  count(report().counters, `late ${name}: ${outcome}`);
}
