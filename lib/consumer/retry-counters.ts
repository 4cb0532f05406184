import { createHash } from 'node:crypto';
import { own } from '../util/own-headers';
import { HEADER_ATTEMPTS, HEADER_COUNTERS_CHECK, HEADER_REDELIVERIES } from '../messaging.constants';

/** What a message has been through on one handler's queue. */
export interface Counters {
  /** Tries made (0 on a fresh message). */
  attempts: number;
  /** Returns without an outcome counted against maxRedeliveries. */
  redeliveries: number;
}

export const FRESH: Readonly<Counters> = Object.freeze({ attempts: 0, redeliveries: 0 });

/**
 * The counters of a message, as this module wrote them on its own retry and return copies.
 * Anyone can write `x-attempts` and `x-redeliveries`: a producer forwarding headers of another
 * message, a tool moving letters from a dead-letter queue, a hand-written value. Such a value
 * must never cost a message its retry policy or its poison limit, nor make a loop. So the module
 * writes, beside the counters, a check value that binds them to the handler's queue and the
 * copy's message id (`x-counters-check`); counters without a matching check read as a fresh
 * message. Dead-letter copies carry the counters for people to read but no check, so a letter
 * moved back by hand gets its full policy again.
 *
 * The check is a digest, not a signature: a producer who computes it on purpose can set a counter
 * (and could as well publish into the dead-letter queue itself); it stops every accidental or
 * out-of-range value. Values are bounded as well: only whole numbers are taken, at most the most
 * the module writes (`maxAttempts`, `maxRedeliveries`).
 */
export function readCounters(
  headers: Record<string, unknown>,
  queue: string,
  messageId: string | undefined,
  maxAttempts: number,
  maxRedeliveries: number,
): Counters {
  const check = own(headers, HEADER_COUNTERS_CHECK);
  if (typeof check !== 'string' || messageId === undefined) return FRESH;
  // Checked as written, then bounded: a genuine count above this instance's maximum (a lower
  // maxRedeliveries after a deploy) is the maximum, not a fresh start.
  const written = { attempts: own(headers, HEADER_ATTEMPTS), redeliveries: own(headers, HEADER_REDELIVERIES) };
  // The module writes both, as whole numbers: anything else beside a check is not its own.
  if (!isCount(written.attempts) || !isCount(written.redeliveries)) return FRESH;
  if (check !== checkValue(queue, messageId, written as Counters)) return FRESH;
  return { attempts: Math.min(written.attempts, maxAttempts), redeliveries: Math.min(written.redeliveries, maxRedeliveries) };
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0;
}

/** The headers that carry `counters` on a copy with `messageId` for `queue`. */
export function counterHeaders(queue: string, messageId: string, counters: Counters): Record<string, unknown> {
  return {
    [HEADER_ATTEMPTS]: counters.attempts,
    [HEADER_REDELIVERIES]: counters.redeliveries,
    [HEADER_COUNTERS_CHECK]: checkValue(queue, messageId, counters),
  };
}

/**
 * A count carried in a header: only an integer from 0 to `max`; anything else (negative,
 * fractional, huge, a string, an array) reads as 0, a fresh count.
 */
export function readCounter(headers: Record<string, unknown>, name: string, max: number): number {
  const value = own(headers, name);
  return isCount(value) && value <= max ? value : 0;
}

function checkValue(queue: string, messageId: string, { attempts, redeliveries }: Counters): string {
  return createHash('sha256').update(`${queue}\n${messageId}\n${attempts}\n${redeliveries}`).digest('base64url').slice(0, 22);
}
