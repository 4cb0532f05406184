import fc from 'fast-check';
import { decide, type Decision, type Ending, type OutcomeRules, policyDelay } from '../../lib/consumer/outcome-rules';
import { counterHeaders, type Counters, FRESH, readCounters } from '../../lib/consumer/retry-counters';
import { DecodeError, DeliveryLimitError, MessageRejectedError, UnrecoverableError } from '../../lib/messaging.errors';
import { MAX_TRIES } from '../../lib/messaging.options';
import { policyDelays } from '../../lib/topology/handler-definition';

/**
 * Issue 24 item 2: the outcome rules as a pure decision, tested as a unit. The table pins each
 * path; the properties run whole lives of a message through the decision and the headers its
 * copies carry (written by counterHeaders, read back by readCounters, as on the broker).
 */
const policy = (attempts: number, delaysMs: number[] = [1000, 5000]): OutcomeRules => ({
  retry: { attempts, delaysMs },
  maxRedeliveries: 5,
  maxTries: MAX_TRIES,
});
const noRetry: OutcomeRules = { retry: false, maxRedeliveries: 5, maxTries: MAX_TRIES };
const fails = (error: Error = new Error('boom')): Ending => ({ kind: 'threw', error });

describe('decide: one row per path', () => {
  it.each<[string, OutcomeRules, number, boolean, Ending, Partial<Decision>]>([
    ['returns', policy(3), 1, false, { kind: 'returned' }, { kind: 'ack' }],
    ['returns, with replyTo', policy(3), 1, true, { kind: 'returned' }, { kind: 'reply' }],
    ['throws, tries left', policy(3), 1, false, fails(), { kind: 'retry', delayMs: 1000, attempts: 1 }],
    ['throws on try 2 of 3', policy(3), 2, false, fails(), { kind: 'retry', delayMs: 5000, attempts: 2 }],
    ['throws on the last try', policy(3), 3, false, fails(), { kind: 'deadLetter', attempts: 3, by: 'failure' }],
    ['throws, no policy', noRetry, 1, false, fails(), { kind: 'deadLetter', attempts: 1, by: 'failure' }],
    ['throws UnrecoverableError', policy(3), 1, false, fails(new UnrecoverableError('no')), { kind: 'deadLetter', by: 'failure' }],
    ['cannot be decoded', policy(3), 1, false, fails(new DecodeError('bad json')), { kind: 'deadLetter', by: 'failure' }],
    [
      'refused by a pipe',
      policy(3),
      1,
      false,
      fails(new MessageRejectedError('BadRequestException', 'no', undefined)),
      { kind: 'deadLetter', by: 'failure' },
    ],
    ['throws, with replyTo', policy(3), 1, true, fails(), { kind: 'reply' }],
    ['refused, with replyTo: kept and answered', policy(3), 1, true, fails(new DecodeError('bad')), { kind: 'deadLetter', reply: true }],
    ['context.ack()', policy(3), 1, false, { kind: 'settled', settlement: { kind: 'ack' } }, { kind: 'ack' }],
    ['context.nack()', policy(3), 1, false, { kind: 'settled', settlement: { kind: 'nack', requeue: true } }, { kind: 'requeue' }],
    [
      'context.nack({ requeue: false })',
      policy(3),
      1,
      false,
      { kind: 'settled', settlement: { kind: 'nack', requeue: false } },
      { kind: 'discard' },
    ],
    [
      'context.deadLetter()',
      policy(3),
      1,
      false,
      { kind: 'settled', settlement: { kind: 'deadLetter', reason: 'why' } },
      { kind: 'deadLetter', by: 'handler' },
    ],
    [
      'context.retry() past the policy',
      policy(3),
      7,
      false,
      { kind: 'settled', settlement: { kind: 'retry' } },
      { kind: 'retry', delayMs: 5000, attempts: 7 },
    ],
    [
      'context.retry({ delayMs })',
      policy(3),
      1,
      false,
      { kind: 'settled', settlement: { kind: 'retry', delayMs: 123 } },
      { kind: 'retry', delayMs: 123 },
    ],
    [
      'context.retry() without a policy: at once',
      noRetry,
      1,
      false,
      { kind: 'settled', settlement: { kind: 'retry' } },
      { kind: 'retry', delayMs: 0 },
    ],
    [
      'context.retry() on try 1000 (50)',
      policy(3),
      MAX_TRIES,
      false,
      { kind: 'settled', settlement: { kind: 'retry' } },
      { kind: 'deadLetter', by: 'limit', attempts: MAX_TRIES },
    ],
    [
      'redelivered, under the limit',
      policy(3),
      1,
      false,
      { kind: 'redelivered', redeliveries: 4 },
      { kind: 'countReturn', redeliveries: 5 },
    ],
    ['redelivered, past the limit', policy(3), 1, false, { kind: 'redelivered', redeliveries: 5 }, { kind: 'deadLetter', by: 'limit' }],
  ])('%s', (_label, rules, attempt, expectsReply, ending, expected) => {
    expect(decide(rules, { attempt, expectsReply }, ending)).toMatchObject(expected);
  });

  it('a limit reached is a DeliveryLimitError that says which', () => {
    const decision = decide(policy(3), { attempt: MAX_TRIES, expectsReply: false }, { kind: 'settled', settlement: { kind: 'retry' } });
    expect(decision).toMatchObject({ kind: 'deadLetter', error: expect.any(DeliveryLimitError) });
  });

  it('policyDelay repeats the last delay the policy uses (only those have retry queues)', () => {
    expect([1, 2, 3, 4].map((attempt) => policyDelay(policy(6, [10, 20]), attempt))).toEqual([10, 20, 20, 20]);
    // attempts 2: only the first delay is used, so it repeats, not 5000 (which has no queue).
    expect([1, 2, 3].map((attempt) => policyDelay(policy(2, [1000, 5000]), attempt))).toEqual([1000, 1000, 1000]);
    // A policy of one try retries only through context.retry(): its first delay (review of #24).
    expect(policyDelay(policy(1, [30_000]), 1)).toBe(30_000);
    expect(policyDelay(noRetry, 3)).toBe(0);
  });
});

describe('readCounters (34, 51): only counters the module wrote for this queue and message count', () => {
  const written = (counters: Counters, queue = 'q', id = 'm1') => ({ ...counterHeaders(queue, id, counters) });

  it('reads back what counterHeaders wrote', () => {
    expect(readCounters(written({ attempts: 3, redeliveries: 2 }), 'q', 'm1', 999, 5)).toEqual({ attempts: 3, redeliveries: 2 });
  });

  it("a genuine count above this instance's maximum (a lower maxRedeliveries after a deploy) is the maximum, not a fresh start", () => {
    expect(readCounters(written({ attempts: 7, redeliveries: 9 }), 'q', 'm1', 999, 5)).toEqual({ attempts: 7, redeliveries: 5 });
  });

  it.each([
    ["a producer's x-attempts: 2 without a check", { 'x-attempts': 2 }],
    ["a producer's x-redeliveries: 5 without a check", { 'x-redeliveries': 5 }],
    ['a check of another queue', written({ attempts: 2, redeliveries: 0 }, 'other')],
    ['a check of another message', written({ attempts: 2, redeliveries: 0 }, 'q', 'm2')],
    ['a counter changed after the check', { ...written({ attempts: 1, redeliveries: 0 }), 'x-attempts': 2 }],
    ['a check that is not a string', { 'x-attempts': 2, 'x-counters-check': 7 }],
    // The module writes both counters as whole numbers: a genuine check beside anything else is not its own.
    ['a genuine check beside a non-number x-redeliveries', { ...written({ attempts: 1, redeliveries: 0 }), 'x-redeliveries': '' }],
  ])('%s reads as a fresh message', (_label, headers) => {
    expect(readCounters(headers, 'q', 'm1', 999, 5)).toEqual(FRESH);
  });

  it('any headers a producer can write, without the check the module computes, read as fresh (property)', () => {
    const value = fc.oneof(
      fc.integer({ min: -2, max: 1200 }),
      fc.double(),
      fc.string(),
      fc.constant(undefined),
      fc.array(fc.integer(), { maxLength: 2 }),
    );
    fc.assert(
      fc.property(value, value, fc.option(fc.string({ maxLength: 30 })), (attempts, redeliveries, check) => {
        const headers = {
          'x-attempts': attempts,
          'x-redeliveries': redeliveries,
          ...(check === null ? {} : { 'x-counters-check': check }),
        };
        const read = readCounters(headers, 'q', 'm1', 999, 5);
        const genuine =
          check !== null &&
          typeof attempts === 'number' &&
          typeof redeliveries === 'number' &&
          check === counterHeaders('q', 'm1', { attempts, redeliveries })['x-counters-check'];
        expect(genuine || read === FRESH).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});

/** A whole life of one message: each try ends as `endings` says, the copies' headers carry the counters. */
function life(rules: OutcomeRules, endings: (step: number) => Ending, startHeaders: Record<string, unknown> = {}) {
  const maxRead = MAX_TRIES - 1;
  let headers = startHeaders;
  const tries: Array<{ attempt: number; decision: Decision }> = [];
  // Far past any legitimate end: reaching it is the loop the property rules out.
  for (let step = 0; step < MAX_TRIES + rules.maxRedeliveries + 10; step++) {
    const counters = readCounters(headers, 'q', 'm1', maxRead, rules.maxRedeliveries);
    const attempt = counters.attempts + 1;
    const next = endings(step);
    // What the consumer passes: the returns its headers count.
    const ending: Ending = next.kind === 'redelivered' ? { kind: 'redelivered', redeliveries: counters.redeliveries } : next;
    const decision = decide(rules, { attempt, expectsReply: false }, ending);
    tries.push({ attempt, decision });
    if (decision.kind === 'retry') headers = counterHeaders('q', 'm1', { ...counters, attempts: decision.attempts });
    else if (decision.kind === 'countReturn') headers = counterHeaders('q', 'm1', { ...counters, redeliveries: decision.redeliveries });
    else return { tries, end: decision };
  }
  return { tries, end: undefined };
}

const rulesArb = fc.record({
  retry: fc.oneof(
    fc.constant(false as const),
    fc.record({
      attempts: fc.integer({ min: 1, max: MAX_TRIES }),
      delaysMs: fc.array(fc.integer({ min: 0, max: 60_000 }), { minLength: 1, maxLength: 5 }),
    }),
  ),
  maxRedeliveries: fc.integer({ min: 0, max: 20 }),
  maxTries: fc.constant(MAX_TRIES),
});

/** Every way a try can end, except the handler's own `nack({ requeue: true })` (an endless loop the handler asks for). */
const endingArb: fc.Arbitrary<Ending> = fc.oneof(
  fc.constant<Ending>({ kind: 'returned' }),
  fc.constantFrom<Ending>(fails(), fails(new UnrecoverableError('x')), fails(new DecodeError('x'))),
  fc.constantFrom<Ending>(
    { kind: 'settled', settlement: { kind: 'ack' } },
    { kind: 'settled', settlement: { kind: 'nack', requeue: false } },
    { kind: 'settled', settlement: { kind: 'deadLetter' } },
    { kind: 'settled', settlement: { kind: 'retry' } },
  ),
  fc.integer({ min: 0, max: 100_000 }).map<Ending>((delayMs) => ({ kind: 'settled', settlement: { kind: 'retry', delayMs } })),
  fc.constant<Ending>({ kind: 'redelivered', redeliveries: 0 }),
);

describe('decide over a whole life (properties)', () => {
  it('every life ends in ack, discard or the dead-letter queue, within maxTries tries plus maxRedeliveries returns; no counter wraps', () => {
    fc.assert(
      fc.property(rulesArb, fc.array(endingArb, { minLength: 1, maxLength: 40 }), (rules, pattern) => {
        // The consumer counts returns only when maxRedeliveries > 0 (handler.consumer.ts).
        const ending = (step: number): Ending => {
          const next = pattern[step % pattern.length];
          return next.kind === 'redelivered' && rules.maxRedeliveries === 0 ? fails() : next;
        };
        const { tries, end } = life(rules, ending);
        expect(end).toBeDefined();
        expect(['ack', 'reply', 'discard', 'deadLetter']).toContain(end!.kind);
        const attempts = tries.map((t) => t.attempt);
        // Tries only go up: a counter never wraps back to attempt 1.
        for (let i = 1; i < attempts.length; i++) expect(attempts[i]).toBeGreaterThanOrEqual(attempts[i - 1]);
        expect(Math.max(...attempts)).toBeLessThanOrEqual(MAX_TRIES);
        expect(tries.filter((t) => t.decision.kind === 'countReturn').length).toBeLessThanOrEqual(rules.maxRedeliveries);
      }),
      { numRuns: 300 },
    );
  });

  it('a handler that always calls context.retry() is dead-lettered on try 1000, never wraps to try 1 (50)', () => {
    const { tries, end } = life(policy(3), () => ({ kind: 'settled', settlement: { kind: 'retry', delayMs: 0 } }));
    expect(tries).toHaveLength(MAX_TRIES);
    expect(end).toMatchObject({ kind: 'deadLetter', by: 'limit', attempts: MAX_TRIES });
  });

  it('a message that always fails gets exactly its policy: every try, each with its delay, whatever counters a producer set (51)', () => {
    const producerHeaders = fc.record({
      'x-attempts': fc.oneof(fc.integer({ min: 0, max: 999 }), fc.double(), fc.string()),
      'x-redeliveries': fc.oneof(fc.integer({ min: 0, max: 20 }), fc.string()),
      // A check of the producer's own making, or one the module wrote for other counters.
      'x-counters-check': fc.oneof(
        fc.string(),
        fc.constant(counterHeaders('q', 'm1', { attempts: 1, redeliveries: 0 })['x-counters-check']),
      ),
    });
    fc.assert(
      fc.property(rulesArb, producerHeaders, (rules, headers) => {
        // Not the counters of a genuine copy of this message forwarded whole (those count, see docs/failures-and-retries.md).
        const { 'x-attempts': forgedAttempts, 'x-redeliveries': forgedRedeliveries } = headers;
        const genuine =
          typeof forgedAttempts === 'number' &&
          typeof forgedRedeliveries === 'number' &&
          headers['x-counters-check'] ===
            counterHeaders('q', 'm1', { attempts: forgedAttempts, redeliveries: forgedRedeliveries })['x-counters-check'];
        fc.pre(!genuine);
        const { tries, end } = life(rules, () => fails(), headers);
        const attempts = rules.retry ? rules.retry.attempts : 1;
        expect(tries.map((t) => t.attempt)).toEqual(Array.from({ length: attempts }, (_, i) => i + 1));
        const delays = tries.flatMap((t) => (t.decision.kind === 'retry' ? [t.decision.delayMs] : []));
        // The policy's delays in order, the last one repeating...
        const expected = rules.retry
          ? tries
              .slice(0, -1)
              .map(
                (t) =>
                  (rules.retry as { delaysMs: number[] }).delaysMs[
                    Math.min(t.attempt, (rules.retry as { delaysMs: number[] }).delaysMs.length) - 1
                  ],
              )
          : [];
        expect(delays).toEqual(expected);
        // ...and only delays with a retry queue declared at startup (or none).
        const declared = policyDelays(rules.retry);
        for (const delay of delays) expect(delay === 0 || declared.includes(delay)).toBe(true);
        expect(end).toMatchObject({ kind: 'deadLetter', attempts });
      }),
      { numRuns: 300 },
    );
  });
});
