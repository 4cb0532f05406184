import fc from 'fast-check';
import { matchesTopic, topicPatternsOverlap } from '../../lib/consumer/topic-pattern';

/**
 * A reference matcher built another way than the unit's: every word becomes one character, so an
 * AMQP topic pattern becomes a plain regular expression over those characters (`*` any one word,
 * `#` any run of words). Only the words the generators below use have a character.
 */
const WORD_CHAR: Record<string, string> = { a: 'a', b: 'b', z: 'z', '': '_', '*': 's', '#': 'h' };

function encodeKey(routingKey: string): string {
  return routingKey
    .split('.')
    .map((word) => WORD_CHAR[word])
    .join('');
}

function referenceRegExp(pattern: string): RegExp {
  const body = pattern
    .split('.')
    .map((word) => (word === '*' ? '.' : word === '#' ? '.*' : WORD_CHAR[word]))
    .join('');
  return new RegExp(`^${body}$`);
}

function referenceMatches(pattern: string, routingKey: string): boolean {
  return referenceRegExp(pattern).test(encodeKey(routingKey));
}

/** Every routing key of 1 to `maxWords` words taken from `words`. */
function allKeys(words: string[], maxWords: number): string[] {
  let level = [...words];
  const keys = [...level];
  for (let n = 2; n <= maxWords; n++) {
    level = level.flatMap((key) => words.map((word) => `${key}.${word}`));
    keys.push(...level);
  }
  return keys;
}

const patternArb = (maxWords: number) =>
  fc.array(fc.constantFrom('a', 'b', '*', '#'), { minLength: 1, maxLength: maxWords }).map((words) => words.join('.'));
/** Keys may hold `*`, `#` and empty words too: in a routing key they are plain words. */
const keyArb = fc.array(fc.constantFrom('a', 'b', 'z', '', '*', '#'), { minLength: 1, maxLength: 6 }).map((words) => words.join('.'));

describe('matchesTopic', () => {
  it.each([
    ['order.created', 'order.created', true],
    ['order.created', 'order.updated', false],
    ['order.*', 'order.created', true],
    ['order.*', 'order', false], // `*` is exactly one word
    ['order.*', 'order.created.eu', false],
    ['order.#', 'order', true], // `#` may be no word at all
    ['order.#', 'order.created.eu.west', true],
    ['#.eu', 'order.created.eu', true],
    ['#.eu', 'eu', true],
    ['#', 'anything.at.all', true],
    ['*.*', 'a', false],
    ['a.#.b', 'a.b', true],
    ['a.#.b', 'a.x.y.b', true],
    ['a.#.b', 'a.x.y.c', false],
    ['#.#', 'a', true],
    ['order', 'order.created', false],
    // In a routing key `*` and `#` are words like any other, not wildcards.
    ['order.created', 'order.*', false],
    ['order.created', 'order.#', false],
    ['order.*', 'order.#', true],
  ])('pattern %j against key %j is %s', (pattern, routingKey, expected) => {
    expect(matchesTopic(pattern, routingKey)).toBe(expected);
  });

  it('agrees with a regular-expression reference on any pattern and key (property)', () => {
    fc.assert(
      fc.property(patternArb(5), keyArb, (pattern, routingKey) => {
        expect(matchesTopic(pattern, routingKey)).toBe(referenceMatches(pattern, routingKey));
      }),
      { numRuns: 2000 },
    );
  });

  it('takes long runs of `#` without blowing up (memoised, not exponential)', () => {
    const pattern = Array.from({ length: 40 }, () => '#').join('.') + '.x';
    const routingKey = Array.from({ length: 200 }, () => 'a').join('.');
    expect(matchesTopic(pattern, routingKey)).toBe(false);
    expect(matchesTopic(pattern, `${routingKey}.x`)).toBe(true);
  });
});

describe('topicPatternsOverlap', () => {
  it.each([
    ['order.created', 'order.created', true],
    ['order.created', 'order.updated', false],
    ['order.*', 'order.created', true],
    ['order.*', '*.created', true],
    ['order.*', 'refund.*', false],
    ['order.#', '#.eu', true], // order.eu
    ['order.*', 'order.*.*', false], // two words against three
    ['order.#', 'order.*.*', true],
    ['#', 'a.b.c', true],
    ['a.#', 'b.#', false],
    ['*', '#', true],
    ['*.*', 'a', false],
  ])('%j and %j overlap: %s', (a, b, expected) => {
    expect(topicPatternsOverlap(a, b)).toBe(expected);
    expect(topicPatternsOverlap(b, a)).toBe(expected);
  });

  it('is true exactly when some routing key matches both patterns (property, brute-force witness search)', () => {
    // A shortest common key has at most one word per non-`#` word of the two patterns (3 + 3), and
    // needs no other words than theirs plus one neither names (`z`).
    const keys = allKeys(['a', 'b', 'z'], 6).map(encodeKey);
    fc.assert(
      fc.property(patternArb(3), patternArb(3), (a, b) => {
        const [ra, rb] = [referenceRegExp(a), referenceRegExp(b)];
        const witness = keys.some((key) => ra.test(key) && rb.test(key));
        expect(topicPatternsOverlap(a, b)).toBe(witness);
      }),
      { numRuns: 300 },
    );
  });

  it('a pattern overlaps any key it matches, taken as a pattern without wildcards (property)', () => {
    fc.assert(
      fc.property(patternArb(5), fc.array(fc.constantFrom('a', 'b', 'z'), { minLength: 1, maxLength: 6 }), (pattern, words) => {
        const routingKey = words.join('.');
        expect(topicPatternsOverlap(pattern, routingKey)).toBe(matchesTopic(pattern, routingKey));
      }),
      { numRuns: 1000 },
    );
  });
});
