import fc from 'fast-check';
import { counterHeaders, type Counters, FRESH, readCounter, readCounters } from '../../lib/consumer/retry-counters';

/**
 * outcome-rules.spec.ts covers forged and foreign checks; copy-counter-headers.spec.ts covers
 * readCounter's table. Here: the bounds a genuine check does not lift, and the shape of the check.
 */
const MAX_ATTEMPTS = 10;
const MAX_REDELIVERIES = 5;

/** Headers exactly as the module writes them on a copy of `m1` for queue `q`. */
const written = (counters: Counters, queue = 'q', messageId = 'm1') => counterHeaders(queue, messageId, counters);
const read = (headers: Record<string, unknown>) => readCounters(headers, 'q', 'm1', MAX_ATTEMPTS, MAX_REDELIVERIES);

describe('readCounters', () => {
  it.each<[string, Counters, Counters]>([
    ['fresh counters', { attempts: 0, redeliveries: 0 }, { attempts: 0, redeliveries: 0 }],
    ['counts within both maxima', { attempts: 4, redeliveries: 2 }, { attempts: 4, redeliveries: 2 }],
    ['counts at both maxima', { attempts: 10, redeliveries: 5 }, { attempts: 10, redeliveries: 5 }],
    // A genuine count above a lowered maximum is the maximum: the message is near its end, not new.
    ['attempts above maxAttempts', { attempts: 11, redeliveries: 0 }, { attempts: 10, redeliveries: 0 }],
    ['redeliveries above maxRedeliveries', { attempts: 1, redeliveries: 1e6 }, { attempts: 1, redeliveries: 5 }],
    ['both far above', { attempts: Number.MAX_SAFE_INTEGER, redeliveries: 99 }, { attempts: 10, redeliveries: 5 }],
  ])('reads %s bounded by the maxima', (_label, counters, expected) => {
    expect(read(written(counters))).toEqual(expected);
  });

  it.each<[string, Counters]>([
    // Checks computed for values the module never writes: a genuine-looking check does not make them counts.
    ['negative attempts', { attempts: -1, redeliveries: 0 }],
    ['negative redeliveries', { attempts: 1, redeliveries: -3 }],
    ['fractional attempts', { attempts: 1.5, redeliveries: 0 }],
    ['NaN redeliveries', { attempts: 1, redeliveries: NaN }],
    ['infinite attempts', { attempts: Infinity, redeliveries: 0 }],
  ])('reads %s as a fresh message even with a matching check', (_label, counters) => {
    expect(read(written(counters))).toBe(FRESH);
  });

  it('reads a message without an id as fresh: the check binds the counters to an id', () => {
    expect(readCounters(written({ attempts: 3, redeliveries: 1 }), 'q', undefined, MAX_ATTEMPTS, MAX_REDELIVERIES)).toBe(FRESH);
  });

  it('reads only headers the table has itself, never inherited ones', () => {
    const headers = Object.create(written({ attempts: 3, redeliveries: 1 })) as Record<string, unknown>;
    expect(read(headers)).toBe(FRESH);
  });

  it('FRESH cannot be changed by whoever reads it', () => {
    expect(Object.isFrozen(FRESH)).toBe(true);
    expect(FRESH).toEqual({ attempts: 0, redeliveries: 0 });
  });

  it('reads back any counts the module writes, bounded by the maxima (property)', () => {
    const count = fc.integer({ min: 0, max: 2_000 });
    fc.assert(
      fc.property(count, count, fc.integer({ min: 0, max: 1_000 }), fc.integer({ min: 0, max: 50 }), (a, r, maxA, maxR) => {
        const counters = readCounters(written({ attempts: a, redeliveries: r }), 'q', 'm1', maxA, maxR);
        expect(counters).toEqual({ attempts: Math.min(a, maxA), redeliveries: Math.min(r, maxR) });
      }),
    );
  });

  it('whatever the headers, the counts are whole numbers from 0 to the maxima (property)', () => {
    const value = fc.oneof(fc.integer(), fc.double(), fc.string(), fc.constant(undefined), fc.boolean());
    fc.assert(
      fc.property(value, value, fc.boolean(), (attempts, redeliveries, withGenuineCheck) => {
        const headers: Record<string, unknown> = { 'x-attempts': attempts, 'x-redeliveries': redeliveries };
        if (withGenuineCheck) {
          headers['x-counters-check'] = written({ attempts, redeliveries } as Counters)['x-counters-check'];
        }
        const counters = read(headers);
        for (const [n, max] of [
          [counters.attempts, MAX_ATTEMPTS],
          [counters.redeliveries, MAX_REDELIVERIES],
        ]) {
          expect(Number.isInteger(n) && n >= 0 && n <= max).toBe(true);
        }
      }),
      { numRuns: 1000 },
    );
  });
});

describe('counterHeaders', () => {
  it('writes both counters and a 22-character base64url check', () => {
    const headers = written({ attempts: 2, redeliveries: 1 });
    expect(headers).toEqual({ 'x-attempts': 2, 'x-redeliveries': 1, 'x-counters-check': expect.stringMatching(/^[A-Za-z0-9_-]{22}$/) });
  });

  it('gives the same check for the same queue, message and counts, and another when any of them differs', () => {
    const check = (counters: Counters, queue = 'q', id = 'm1') => written(counters, queue, id)['x-counters-check'];
    const base = check({ attempts: 2, redeliveries: 1 });
    expect(check({ attempts: 2, redeliveries: 1 })).toBe(base);
    const others = [
      check({ attempts: 3, redeliveries: 1 }),
      check({ attempts: 2, redeliveries: 0 }),
      check({ attempts: 2, redeliveries: 1 }, 'q2'),
      check({ attempts: 2, redeliveries: 1 }, 'q', 'm2'),
      // The parts are separated: without separators, message "m" with 12 attempts would read as "m1" with 2.
      check({ attempts: 12, redeliveries: 1 }, 'q', 'm'),
    ];
    expect(new Set([base, ...others]).size).toBe(others.length + 1);
  });
});

describe('readCounter', () => {
  it('is the header when it is a whole number from 0 to max, otherwise 0 (property)', () => {
    const value = fc.oneof(fc.integer({ min: -5, max: 30 }), fc.double(), fc.string(), fc.constant(null), fc.constant(undefined));
    fc.assert(
      fc.property(value, fc.integer({ min: 0, max: 20 }), (v, max) => {
        const n = readCounter({ 'x-redeliveries': v }, 'x-redeliveries', max);
        const valid = typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
        expect(n).toBe(valid ? v : 0);
      }),
      { numRuns: 1000 },
    );
  });
});
