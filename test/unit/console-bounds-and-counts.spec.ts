import { BadRequestException } from '@nestjs/common';
import { InvalidArgumentError } from '../../lib';
import { doneOf, letterId, lettersOf, targetOf } from '../../lib/console/console-action';
import { ratesBetween, OutcomeRateWindow, RATE_WINDOW_MS } from '../../lib/console/outcome-rates';
import { LAST_PAGE, pageCount, pageWindow, PAGE_SIZE } from '../../lib/console/paging';
import { stackExcerpt } from '../../lib/consumer/stack-excerpt';
import { MAX_ERROR_MESSAGE_LENGTH } from '../../lib/messaging.constants';
import { checkIds, checkPage, MAX_IDS, MAX_OFFSET, MAX_PAGE_LIMIT } from '../../lib/operations/dead-letter';
import { OutcomeCounters } from '../../lib/telemetry/outcome-counters';
import { NOOP_TELEMETRY } from '../../lib/telemetry/noop.telemetry';
import { KeyedSerial } from '../../lib/util/keyed-serial';

const ID = 'a'.repeat(32);
const OTHER = 'b'.repeat(32);

/** Bounds of every read, what a request may ask for, and the counts the overview shows. */
describe('console paging, requests and counts', () => {
  describe('page bounds', () => {
    it('DeadLetters.browse takes an offset up to MAX_OFFSET and a limit up to MAX_PAGE_LIMIT, naming the one out of range', () => {
      expect(checkPage({})).toEqual({ offset: 0, limit: 20 });
      expect(checkPage({ offset: MAX_OFFSET, limit: MAX_PAGE_LIMIT })).toEqual({ offset: MAX_OFFSET, limit: MAX_PAGE_LIMIT });
      for (const offset of [-1, 1.5, MAX_OFFSET + 1, NaN])
        expect(() => checkPage({ offset })).toThrow(/"offset" must be an integer from 0 to 1000/);
      for (const limit of [0, MAX_PAGE_LIMIT + 1, 2.5]) expect(() => checkPage({ limit })).toThrow(InvalidArgumentError);
    });

    it('a letter id list is 1 to MAX_IDS ids of 32 hex digits', () => {
      expect(checkIds([ID, OTHER, ID])).toEqual(new Set([ID, OTHER]));
      for (const ids of [[], [ID.toUpperCase()], ['x'], Array(MAX_IDS + 1).fill(ID), ID, undefined]) {
        expect(() => checkIds(ids)).toThrow(/"ids" must be an array of 1 to 100 dead-letter ids/);
      }
    });

    it('the console reads whole pages of PAGE_SIZE, never past LAST_PAGE; a page it cannot read is page 1', () => {
      expect(pageWindow(undefined)).toEqual({ page: 1, offset: 0, limit: PAGE_SIZE });
      expect(pageWindow('3')).toEqual({ page: 3, offset: 2 * PAGE_SIZE, limit: PAGE_SIZE });
      expect(pageWindow(2)).toEqual({ page: 2, offset: PAGE_SIZE, limit: PAGE_SIZE });
      expect(pageWindow('999999999').page).toBe(LAST_PAGE);
      expect(pageWindow(String(LAST_PAGE)).offset).toBeLessThanOrEqual(MAX_OFFSET);
      for (const raw of ['0', '-2', '1.5', 'abc', '', ['2'], {}, '1e3']) expect(pageWindow(raw).page).toBe(1);
      expect([0, 1, 20, 21, 1_000_000].map(pageCount)).toEqual([1, 1, 1, 2, LAST_PAGE]);
    });
  });

  describe('requests', () => {
    it('names connection and queue, from a query, a form or JSON', () => {
      expect(targetOf({ connection: 'default', queue: 'orders', page: '2' })).toMatchObject({
        connection: 'default',
        queue: 'orders',
        window: { page: 2 },
      });
      expect(targetOf({ connection: 'a', queue: 'q', page: 3 }).window.page).toBe(3);
      for (const fields of [{}, { connection: 'a' }, { queue: 'q' }, { connection: ['a'], queue: 'q' }, undefined]) {
        expect(() => targetOf(fields)).toThrow(BadRequestException);
      }
    });

    it("picks the letters of a replay: a letter's own button, all, the checked boxes or an ids array", () => {
      expect(lettersOf({ only: ID, id: [OTHER] })).toEqual([ID]);
      expect(lettersOf({ all: '1' })).toBe('all');
      expect(lettersOf({ all: true })).toBe('all');
      expect(lettersOf({ id: ID })).toEqual([ID]);
      expect(lettersOf({ id: [ID, OTHER, ID] })).toEqual([ID, OTHER]);
      expect(lettersOf({ ids: [OTHER] })).toEqual([OTHER]);
      for (const fields of [{}, { all: 'yes' }, { id: [] }, { id: ['nope'] }, { only: 'x' }, { id: Array(MAX_IDS + 1).fill(ID) }]) {
        expect(() => lettersOf(fields)).toThrow(BadRequestException);
      }
      expect(() => letterId(undefined)).toThrow('Not a letter id');
    });

    it('reads what was done only as a known action and a count', () => {
      expect(doneOf({ done: 'replayed', count: '3' })).toEqual({ action: 'replayed', count: 3 });
      expect(doneOf({ done: 'deleted', count: '1' })).toEqual({ action: 'deleted', count: 1 });
      expect(doneOf({ done: '<b>', count: '1' })).toBeUndefined();
      expect(doneOf({ done: 'replayed', count: 'many' })).toBeUndefined();
      expect(doneOf({})).toBeUndefined();
    });
  });

  describe('outcome counts and rates', () => {
    it('count nothing unless asked; once asked, each settled delivery of a queue by outcome', () => {
      const counters = new OutcomeCounters();
      expect(counters.of('q')).toBeUndefined();
      const telemetry = counters.around(NOOP_TELEMETRY);
      telemetry.settled('q', 'acked');
      telemetry.settled('q', 'acked');
      telemetry.settled('q', 'dead_lettered');
      expect(counters.of('q')).toEqual({ acked: 2, retried: 0, dead_lettered: 1, requeued: 0 });
      expect(counters.of('other')).toEqual({ acked: 0, retried: 0, dead_lettered: 0, requeued: 0 });
      expect(telemetry.consume('q', {} as never, (n: number) => n + 1, 1)).toBe(2);
    });

    it('rates per minute between samples at least a second apart, over the last minute', () => {
      const at = (count: number) => ({ acked: count, retried: 0, dead_lettered: 0, requeued: 0 });
      expect(ratesBetween({ at: 0, counts: at(0) }, { at: 30_000, counts: at(15) })).toEqual({
        acked: 30,
        retried: 0,
        dead_lettered: 0,
        requeued: 0,
      });
      expect(ratesBetween({ at: 0, counts: at(0) }, { at: 500, counts: at(5) })).toBeUndefined();
      const window = new OutcomeRateWindow();
      expect(window.rates('q', at(1), 0)).toBeUndefined();
      window.record('q', at(0), 0);
      window.record('q', at(10), 30_000);
      expect(window.rates('q', at(20), 60_000)?.acked).toBe(20);
      // The sample at 0 is older than the window at 90 s: from the one at 30 s.
      expect(window.rates('q', at(40), RATE_WINDOW_MS + 30_000)?.acked).toBe(30);
    });
  });

  it('KeyedSerial runs work one at a time per key, in order, and keys side by side', async () => {
    const serial = new KeyedSerial();
    const order: string[] = [];
    let release!: () => void;
    const first = serial.run('a', () => new Promise<void>((resolve) => (release = resolve)).then(() => void order.push('a1')));
    const second = serial.run('a', async () => void order.push('a2'));
    const other = serial.run('b', async () => void order.push('b1'));
    await other;
    expect(order).toEqual(['b1']);
    release();
    await Promise.all([first, second]);
    expect(order).toEqual(['b1', 'a1', 'a2']);
    await expect(serial.run('a', () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    await expect(serial.run('a', async () => 'after a failure')).resolves.toBe('after a failure');
  });

  it("stackExcerpt keeps a stack's frames, not its first line, cut to the error message's length", () => {
    const error = new Error('boom\nsecond line');
    const excerpt = stackExcerpt(error)!;
    expect(excerpt.startsWith('at ')).toBe(true);
    expect(excerpt).not.toContain('boom');
    error.stack = `Error: x\n${'    at frame (file.ts:1:1)\n'.repeat(100)}`;
    expect(stackExcerpt(error)!.length).toBe(MAX_ERROR_MESSAGE_LENGTH);
    error.stack = undefined;
    expect(stackExcerpt(error)).toBeUndefined();
    error.stack = 'custom stack';
    expect(stackExcerpt(error)).toBe('custom stack');
  });
});
