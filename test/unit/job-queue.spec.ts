import { JobQueue } from '../../lib/publisher/job-queue';

describe('JobQueue', () => {
  const job = (id: number, deadline = Infinity) => ({ id, deadline });

  it('is first in, first out, with unshift putting a job back in front', () => {
    const queue = new JobQueue<ReturnType<typeof job>>();
    [1, 2, 3].forEach((id) => queue.push(job(id)));
    expect(queue.shift()?.id).toBe(1);
    queue.unshift(job(0));
    expect([queue.shift(), queue.shift(), queue.shift()].map((j) => j?.id)).toEqual([0, 2, 3]);
    expect(queue.shift()).toBeUndefined();
    expect(queue.length).toBe(0);
  });

  it('keeps order across compaction at 100,000 entries', () => {
    const queue = new JobQueue<ReturnType<typeof job>>();
    for (let i = 0; i < 100_000; i++) queue.push(job(i));
    for (let i = 0; i < 60_000; i++) expect(queue.shift()!.id).toBe(i);
    queue.push(job(100_000));
    expect(queue.length).toBe(40_001);
    expect(queue.shift()!.id).toBe(60_000);
  });

  it('takes out expired jobs wherever they are, and clears', () => {
    const queue = new JobQueue<ReturnType<typeof job>>();
    [job(1, 10), job(2, 50), job(3, 5), job(4, 100)].forEach((j) => queue.push(j));
    queue.shift();
    expect(queue.takeExpired(20).map((j) => j.id)).toEqual([3]);
    expect(queue.clear().map((j) => j.id)).toEqual([2, 4]);
    expect(queue.length).toBe(0);
  });
});
