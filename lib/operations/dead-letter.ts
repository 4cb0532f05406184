import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '../messaging.errors';
import type { Message, MessageProperties } from '../transport/transport.interface';
import { ownHeaders } from '../util/own-headers';

/** The most letters one page of `DeadLetters.browse` holds. */
export const MAX_PAGE_LIMIT = 100;
/**
 * How deep into a dead-letter queue `browse` reads, and how far `replay({ ids })` and `discard`
 * look for a letter: every letter before the page is held (unacked, in this process's memory)
 * while the page is read, so this bounds what one read holds (MAX_HELD).
 */
export const MAX_OFFSET = 1_000;
/** The most letters one operation holds unacked: the deepest page's, and those before it. */
export const MAX_HELD = MAX_OFFSET + MAX_PAGE_LIMIT;
/** The most ids one `replay({ ids })` or `discard` names. */
export const MAX_IDS = MAX_PAGE_LIMIT;

/** A message waiting in a dead-letter queue, as `DeadLetters.browse` shows it. */
export interface DeadLetter {
  /**
   * Stable while the letter waits, whoever reads it: a digest of its message id and body (see
   * deadLetterId). Letters with the same id and body are interchangeable, and one id names either.
   */
  id: string;
  /** Its place in the dead-letter queue when read, 0 at the head. */
  position: number;
  messageId?: string;
  content: Buffer;
  properties: Omit<MessageProperties, 'headers'>;
  /** Its own headers (x-error-name, x-error-message, x-error-stack, x-attempts, x-original-* and the producer's). */
  headers: Record<string, unknown>;
}

export interface DeadLetterPage {
  deadLetterQueue: string;
  /** Letters ready in the dead-letter queue when the page was read. */
  total: number;
  offset: number;
  letters: DeadLetter[];
}

/** A letter's id: 32 hex digits of SHA-256 over its message id and body, which do not change while it waits. */
export function deadLetterId(msg: Message): string {
  return createHash('sha256')
    .update(msg.properties.messageId ?? '')
    .update('\0')
    .update(msg.content)
    .digest('hex')
    .slice(0, 32);
}

export function deadLetterOf(msg: Message, position: number): DeadLetter {
  const { headers, ...properties } = msg.properties;
  return {
    id: deadLetterId(msg),
    position,
    messageId: properties.messageId,
    content: msg.content,
    properties,
    headers: ownHeaders(headers),
  };
}

/** `browse`'s page, checked: an offset from 0 to MAX_OFFSET and a limit from 1 to MAX_PAGE_LIMIT (default 20). */
export function checkPage(page: { offset?: number; limit?: number }): { offset: number; limit: number } {
  const { offset = 0, limit = 20 } = page;
  if (!Number.isInteger(offset) || offset < 0 || offset > MAX_OFFSET) {
    throw new InvalidArgumentError('offset', `an integer from 0 to ${MAX_OFFSET}`, offset);
  }
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_PAGE_LIMIT) {
    throw new InvalidArgumentError('limit', `an integer from 1 to ${MAX_PAGE_LIMIT}`, limit);
  }
  return { offset, limit };
}

/** Letter ids, checked: 1 to MAX_IDS strings, as `deadLetterId` makes them. */
export function checkIds(ids: unknown): Set<string> {
  if (
    !Array.isArray(ids) ||
    ids.length === 0 ||
    ids.length > MAX_IDS ||
    !ids.every((id) => typeof id === 'string' && /^[0-9a-f]{32}$/.test(id))
  ) {
    throw new InvalidArgumentError('ids', `an array of 1 to ${MAX_IDS} dead-letter ids (32 hex digits, from browse())`, ids);
  }
  return new Set(ids as string[]);
}
