import fc from 'fast-check';
import { ConfirmWindow } from '../../lib/publisher/confirm-window';
import type { PublishJob } from '../../lib/transport/outgoing';

let submitted = 0;

function job(id: string, deadline = Infinity): PublishJob {
  return {
    message: { exchange: 'ex', routingKey: 'rk', properties: { messageId: id } },
    deadline,
    settle: () => undefined,
    seq: submitted++,
    returned: false,
  };
}

describe('ConfirmWindow', () => {
  it.each([
    [1, 0, false],
    [1, 1, true],
    [3, 2, false],
    [3, 3, true],
    [3, 4, true], // more than max (e.g. republished after a lost channel) is full as well
  ])('with max %i and %i jobs in flight, full is %s', (max, count, full) => {
    const window = new ConfirmWindow(max);
    for (let i = 0; i < count; i++) window.add(job(`m${i}`));
    expect(window.size).toBe(count);
    expect(window.full).toBe(full);
  });

  it('has room again once a confirmed job is deleted', () => {
    const window = new ConfirmWindow(2);
    const [a, b] = [job('a'), job('b')];
    window.add(a);
    window.add(b);
    expect(window.full).toBe(true);
    expect(window.delete(a)).toBe(true);
    expect(window.full).toBe(false);
    expect(window.has(a)).toBe(false);
    expect(window.has(b)).toBe(true);
  });

  it('deleting a job that is gone already (it timed out meanwhile) returns false', () => {
    const window = new ConfirmWindow(5);
    const late = job('late', 100);
    window.add(late);
    expect(window.takeExpired(100)).toEqual([late]);
    expect(window.delete(late)).toBe(false);
    expect(window.delete(job('never-added'))).toBe(false);
  });

  it('counts a job added twice once (a set of jobs, by identity)', () => {
    const window = new ConfirmWindow(5);
    const a = job('a');
    window.add(a);
    window.add(a);
    window.add(job('a')); // another publish with the same id is another job
    expect(window.size).toBe(2);
  });

  it('takes out exactly the jobs whose deadline is at or before now, the first submitted first, and keeps the others', () => {
    const window = new ConfirmWindow(10);
    const jobs = [job('past', 50), job('now', 100), job('future', 101), job('never')];
    // Added in another order than submitted, with a slot freed in between: the order still is the submission's.
    const gone = job('gone');
    window.add(gone);
    [jobs[3], jobs[1], jobs[2], jobs[0]].forEach((j) => window.add(j));
    window.delete(gone);
    expect(window.takeExpired(100).map((j) => j.message.properties.messageId)).toEqual(['past', 'now']);
    expect(window.size).toBe(2);
    expect(window.takeExpired(100)).toEqual([]);
    expect(window.takeExpired(Number.MAX_SAFE_INTEGER).map((j) => j.message.properties.messageId)).toEqual(['future']);
    expect(window.has(jobs[3])).toBe(true); // an Infinity deadline never expires
  });

  it('behaves like a set of jobs with deadlines under any sequence of operations (property)', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), id: fc.integer({ min: 0, max: 9 }), deadline: fc.integer({ min: 0, max: 100 }) }),
      fc.record({ kind: fc.constant('delete' as const), id: fc.integer({ min: 0, max: 9 }) }),
      fc.record({ kind: fc.constant('expire' as const), now: fc.integer({ min: 0, max: 100 }) }),
    );
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(op, { maxLength: 40 }), (max, ops) => {
        const window = new ConfirmWindow(max);
        const jobs = new Map<number, PublishJob>();
        const model = new Set<PublishJob>();
        for (const step of ops) {
          if (step.kind === 'add') {
            const added = jobs.get(step.id) ?? job(String(step.id), step.deadline);
            jobs.set(step.id, added);
            window.add(added);
            model.add(added);
          } else if (step.kind === 'delete') {
            const known = jobs.get(step.id);
            if (!known) continue;
            expect(window.delete(known)).toBe(model.delete(known));
          } else {
            const expected = [...model].filter((j) => j.deadline <= step.now);
            expected.forEach((j) => model.delete(j));
            expect(new Set(window.takeExpired(step.now))).toEqual(new Set(expected));
          }
          expect(window.size).toBe(model.size);
          expect(window.full).toBe(model.size >= max);
          for (const known of jobs.values()) expect(window.has(known)).toBe(model.has(known));
        }
      }),
      { numRuns: 300 },
    );
  });
});
