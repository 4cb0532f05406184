import { BadRequestException } from '@nestjs/common';
import { MAX_IDS } from '../operations/dead-letter';
import { bodyField, ownField } from './console-request';
import { pageWindow, type PageWindow } from './paging';

const LETTER_ID = /^[0-9a-f]{32}$/;

/** The dead-letter queue a page or an action is about. */
export interface ConsoleTarget {
  connection: string;
  /** The handler's base queue (its dead-letter queue is `<queue>.dlq`). */
  queue: string;
  window: PageWindow;
}

/** Connection, queue and page from a query string or a posted form (or JSON body); 400 without them. */
export function targetOf(fields: unknown): ConsoleTarget {
  const connection = bodyField(fields, 'connection');
  const queue = bodyField(fields, 'queue');
  if (!connection || !queue) throw new BadRequestException('"connection" and "queue" are required');
  return { connection, queue, window: pageWindow(ownField(fields, 'page')) };
}

/**
 * The letters a replay names: `only` (a letter's own button), else `all` (`"1"` from the form,
 * `true` in JSON), else `id` (the checked boxes, one or many) or `ids` (JSON). 400 for none, too
 * many, or anything that is not a letter id.
 */
export function lettersOf(fields: unknown): string[] | 'all' {
  const only = ownField(fields, 'only');
  if (only !== undefined) return [letterId(only)];
  const all = ownField(fields, 'all');
  if (all === '1' || all === true) return 'all';
  const given = ownField(fields, 'ids') ?? ownField(fields, 'id');
  const ids = typeof given === 'string' ? [given] : given;
  if (!Array.isArray(ids) || ids.length === 0) throw new BadRequestException('Select at least one letter');
  if (ids.length > MAX_IDS) throw new BadRequestException(`Select at most ${MAX_IDS} letters at once`);
  return [...new Set(ids.map(letterId))];
}

/** A letter id as browse makes them; 400 otherwise. */
export function letterId(value: unknown): string {
  if (typeof value !== 'string' || !LETTER_ID.test(value)) throw new BadRequestException('Not a letter id');
  return value;
}

/** What was done before the redirect to a dead-letter page, shown there once. */
export type DoneNotice = { action: 'replayed' | 'deleted'; count: number };

/** What the page after an action says was done (`?done=replayed&count=3`); undefined for anything else. */
export function doneOf(query: unknown): DoneNotice | undefined {
  const action = bodyField(query, 'done');
  const count = bodyField(query, 'count');
  if ((action !== 'replayed' && action !== 'deleted') || !count || !/^\d{1,9}$/.test(count)) return undefined;
  return { action, count: Number(count) };
}
