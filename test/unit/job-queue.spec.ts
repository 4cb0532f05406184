import { JobQueue } from '../../lib/publisher/job-queue';

describe('JobQueue', () => {
  const job = (id: number, deadline = Infinity) => ({ id, deadline });

  it('is first in, first out, with putBack putting jobs back in front in their order', () => {
    const queue = new JobQueue<ReturnType<typeof job>>();
    [1, 2, 3].forEach((id) => queue.push(job(id)));
    expect(queue.shift()?.id).toBe(1);
    queue.putBack([job(-1), job(0)]);
    expect(queue.peek()?.id).toBe(-1);
    expect([queue.shift(), queue.shift(), queue.shift(), queue.shift()].map((j) => j?.id)).toEqual([-1, 0, 2, 3]);
    expect(queue.shift()).toBeUndefined();
    expect(queue.peek()).toBeUndefined();
    expect(queue.length).toBe(0);
  });

  it('puts back into the room left by taken jobs, or in front of everything when there is not enough', () => {
    const queue = new JobQueue<ReturnType<typeof job>>();
    for (let i = 0; i < 10; i++) queue.push(job(i));
    for (let i = 0; i < 5; i++) queue.shift();
    queue.putBack([job(2), job(3), job(4)]);
    queue.putBack([job(-3), job(-2), job(-1), job(0), job(1)]);
    expect(queue.length).toBe(13);
    expect(queue.clear().map((j) => j.id)).toEqual([-3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
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
