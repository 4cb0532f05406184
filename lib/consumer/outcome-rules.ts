import type { Settlement } from '../interfaces/message-context.interface';
import { DecodeError, DeliveryLimitError, MessageRejectedError, UnrecoverableError } from '../messaging.errors';
import type { SettleOutcome } from '../telemetry/telemetry.interface';

/**
 * The outcome rules of the reliability promise, as one pure decision: what happened to a delivery
 * in, what must happen to it out. No broker, no clock, no state; MessageOutcome carries a decision
 * out (copies confirmed first, then the original settled). Every path ends: a retry is bounded by
 * the policy's `attempts` or, for a handler's own `context.retry()`, by `maxTries`; a return
 * without an outcome by `maxRedeliveries`; past those the message goes to the dead-letter queue.
 */

/** The handler's rules. */
export interface OutcomeRules {
  retry: { attempts: number; delaysMs: readonly number[] } | false;
  /** Returns without an outcome before a message is poison; 0: not counted. */
  maxRedeliveries: number;
  /** The most tries a message gets, also through `context.retry()`. */
  maxTries: number;
}

/** How the handler's run for one delivery ended, or that it did not run (a counted redelivery). */
export type Ending =
  | { kind: 'returned' }
  | { kind: 'threw'; error: Error }
  | { kind: 'settled'; settlement: Settlement }
  /** Came back without an outcome (its consumer died); `redeliveries`: the returns counted before this one. */
  | { kind: 'redelivered'; redeliveries: number };

/** What is known of the delivery itself. */
export interface DeliveryFacts {
  /** This try, 1 on the first. */
  attempt: number;
  /** It has `replyTo`: a caller waits for an answer. */
  expectsReply: boolean;
}

export type Decision =
  /** Acked. */
  | { kind: 'ack' }
  /** Answered (with the error, when there is one), then acked. */
  | { kind: 'reply'; error?: Error }
  /** A copy goes back to the queue after `delayMs` (0: at once), carrying `attempts` tries made; then acked. `error`: the failure retried. */
  | { kind: 'retry'; delayMs: number; attempts: number; error?: Error }
  /**
   * A copy goes to the dead-letter queue (and the caller, if any, gets the error); then acked.
   * `by`: the handler failed, its handler settled it so, or a limit of tries or returns was reached.
   */
  | { kind: 'deadLetter'; error: Error; attempts: number; reply: boolean; by: 'failure' | 'handler' | 'limit' }
  /** A copy goes back to the queue at once with the returns counted so far; then acked. */
  | { kind: 'countReturn'; redeliveries: number }
  /** Back to the queue by the broker (nack, requeue). */
  | { kind: 'requeue' }
  /** Dropped (nack, no requeue). */
  | { kind: 'discard' };

export function decide(rules: OutcomeRules, facts: DeliveryFacts, ending: Ending): Decision {
  switch (ending.kind) {
    case 'returned':
      return facts.expectsReply ? { kind: 'reply' } : { kind: 'ack' };
    case 'threw':
      return onThrow(rules, facts, ending.error);
    case 'settled':
      return onSettlement(rules, facts, ending.settlement);
    case 'redelivered': {
      const redeliveries = ending.redeliveries + 1;
      if (redeliveries <= rules.maxRedeliveries) return { kind: 'countReturn', redeliveries };
      const error = new DeliveryLimitError(`Delivered ${redeliveries} times without an outcome (maxRedeliveries ${rules.maxRedeliveries})`);
      return { kind: 'deadLetter', error, attempts: facts.attempt, reply: false, by: 'limit' };
    }
  }
}

function onThrow(rules: OutcomeRules, { attempt, expectsReply }: DeliveryFacts, error: Error): Decision {
  // The caller is waiting for an answer, not for a retry: it gets the error; a message no try can
  // handle is kept in the dead-letter queue as well.
  if (expectsReply)
    return isRefused(error) ? { kind: 'deadLetter', error, attempts: attempt, reply: true, by: 'failure' } : { kind: 'reply', error };
  const { retry } = rules;
  if (retry && attempt < Math.min(retry.attempts, rules.maxTries) && !(error instanceof UnrecoverableError) && !isRefused(error)) {
    return { kind: 'retry', delayMs: policyDelay(rules, attempt), attempts: attempt, error };
  }
  return { kind: 'deadLetter', error, attempts: attempt, reply: false, by: 'failure' };
}

function onSettlement(rules: OutcomeRules, { attempt }: DeliveryFacts, settlement: Settlement): Decision {
  switch (settlement.kind) {
    case 'ack':
      return { kind: 'ack' };
    case 'nack':
      return settlement.requeue ? { kind: 'requeue' } : { kind: 'discard' };
    case 'deadLetter':
      return {
        kind: 'deadLetter',
        error: new UnrecoverableError(settlement.reason ?? 'Dead-lettered by its handler'),
        attempts: attempt,
        reply: false,
        by: 'handler',
      };
    case 'retry':
      if (attempt >= rules.maxTries) {
        const error = new DeliveryLimitError(`Tried ${attempt} times: context.retry() gives a message at most ${rules.maxTries} tries`);
        return { kind: 'deadLetter', error, attempts: attempt, reply: false, by: 'limit' };
      }
      return { kind: 'retry', delayMs: settlement.delayMs ?? policyDelay(rules, attempt), attempts: attempt };
  }
}

/**
 * The policy's wait after try `attempt`: `delaysMs[attempt - 1]`, the last of those the policy
 * uses repeating (only those have retry queues, see policyDelays); for a policy of one try (which
 * retries only through `context.retry()`) its first delay; 0 without a policy.
 */
export function policyDelay({ retry }: Pick<OutcomeRules, 'retry'>, attempt: number): number {
  if (!retry) return 0;
  const used = Math.min(retry.delaysMs.length, Math.max(1, retry.attempts - 1));
  return retry.delaysMs[Math.min(attempt, used) - 1];
}

/** The message itself is unacceptable (undecodable, or refused by a guard or pipe): no try can succeed. */
export function isRefused(error: Error): boolean {
  return error instanceof DecodeError || error instanceof MessageRejectedError;
}

/** How a decision is counted in metrics. */
export function settleOutcomeOf(decision: Decision): SettleOutcome {
  switch (decision.kind) {
    case 'retry':
      return 'retried';
    case 'deadLetter':
      return 'dead_lettered';
    case 'countReturn':
    case 'requeue':
      return 'requeued';
    default:
      return 'acked';
  }
}
