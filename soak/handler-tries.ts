/** What every soak handler does with one message: fail its first try when asked to, and report. */
import type { MessageContext } from '../lib';
import { report } from './instance-report';
import type { Handler } from './protocol';

export interface Payload {
  seq: number;
  /** The handler throws on the first try of this message and succeeds on the next. */
  failFirst: boolean;
  /** When the producer sent it (delayed sends check their delay with it). */
  sentAt?: number;
  /** What the settle handler does with it (see FeatureHandlers.settle). */
  mode?: SettleMode;
}

/** How the settle handler settles a message itself. */
export const SETTLE_MODES = ['ack-early', 'ack-then-throw', 'nack-requeue', 'retry-delay', 'dead-letter', 'drop', 'late'] as const;
export type SettleMode = (typeof SETTLE_MODES)[number];

export class TransientFailure extends Error {
  override name = 'TransientFailure';
}

/** Throws on the first try of a message meant to fail once; reports it handled otherwise. */
export function handle(handler: Handler, payload: Payload, context: MessageContext): void {
  failFirstTry(handler, payload, context);
  handled(handler, context);
}

export function failFirstTry(handler: Handler, payload: Payload, context: MessageContext): void {
  if (payload.failFirst && context.attempt === 1) {
    report().failed.push({ handler, id: context.messageId!, attempt: context.attempt, at: Date.now() });
    throw new TransientFailure(`${handler} fails the first try of ${context.messageId}`);
  }
}

export function handled(handler: Handler, context: MessageContext): void {
  report().handled.push({ handler, id: context.messageId!, attempt: context.attempt });
}
