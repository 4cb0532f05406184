import { MAX_OFFSET } from '../operations/dead-letter';

/** Letters per dead-letter page. */
export const PAGE_SIZE = 20;
/** The deepest page: its letters start at MAX_OFFSET at most. */
export const LAST_PAGE = Math.floor(MAX_OFFSET / PAGE_SIZE) + 1;

export interface PageWindow {
  /** From 1. */
  page: number;
  offset: number;
  limit: number;
}

/**
 * The page a request asks for (`?page=`, or a number in JSON): a whole number from 1 to LAST_PAGE; anything else is
 * page 1, and a page past the last is the last, so no request reads deeper than MAX_OFFSET.
 */
export function pageWindow(raw: unknown): PageWindow {
  const text = typeof raw === 'number' ? String(raw) : raw;
  const asked = typeof text === 'string' && /^\d{1,9}$/.test(text) ? Number(text) : 1;
  const page = Math.min(Math.max(asked, 1), LAST_PAGE);
  return { page, offset: (page - 1) * PAGE_SIZE, limit: PAGE_SIZE };
}

/** The pages `total` letters fill, within what the console reads (at least 1). */
export function pageCount(total: number): number {
  return Math.min(Math.max(Math.ceil(total / PAGE_SIZE), 1), LAST_PAGE);
}
