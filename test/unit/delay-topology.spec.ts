import { InvalidArgumentError } from '../../lib';
import { DELAY_QUEUE_RENEW_MS, delayQueueExpiresMs } from '../../lib/topology/delay-queues';
import { RecentDeclarations } from '../../lib/topology/recent-declarations';
import { checkSendOptions, MAX_DELAY_MS } from '../../lib/rpc/send-properties';

/** RELIABILITY.md round 3, the pure parts of delayed sends: 54 (bounded) and 56 (never early). */
describe('delay topology', () => {
  function cache(freshForMs = 1_000, max = 3) {
    let now = 0;
    const declared: string[] = [];
    const recent = new RecentDeclarations<string>(freshForMs, max, () => now);
    const use = (name: string) => recent.get(name, () => (declared.push(name), Promise.resolve(name)));
    return { recent, declared, use, later: (ms: number) => (now += ms) };
  }

  it('54: declares once while fresh, again once it is as old as freshForMs (renewing an x-expires lease)', async () => {
    const { declared, use, later } = cache();
    await use('a');
    later(999);
    await use('a');
    expect(declared).toEqual(['a']);
    later(1);
    await use('a');
    expect(declared).toEqual(['a', 'a']);
  });

  it('54: holds at most `max` names, dropping the oldest, and drops stale ones as others are declared', async () => {
    const { recent, declared, use, later } = cache(1_000, 3);
    for (let i = 0; i < 100; i++) await use(`d${i}`);
    expect(recent.size).toBe(3);
    await use('d99');
    expect(declared).toHaveLength(100);
    later(1_000);
    await use('fresh');
    expect(recent.size).toBe(1);
  });

  it('54: a failed declaration is not remembered; forget() makes the next use declare again', async () => {
    const { recent, declared, use } = cache();
    await expect(recent.get('x', () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    await use('x');
    await use('x');
    recent.forget('x');
    await use('x');
    expect(declared).toEqual(['x', 'x']);
  });

  it('54: a delay queue outlives its delay by more than the renewal period, and RabbitMQ takes its x-expires (at most 2^32 - 1)', () => {
    for (const delayMs of [1, 1_000, MAX_DELAY_MS]) {
      expect(delayQueueExpiresMs(delayMs) - delayMs).toBeGreaterThan(10 * DELAY_QUEUE_RENEW_MS);
      expect(delayQueueExpiresMs(delayMs)).toBeLessThanOrEqual(2 ** 32 - 1);
    }
  });

  it('56: expirationMs with delayMs is refused, naming both; either alone is taken', () => {
    for (const expirationMs of [1, 999, 1_000, 60_000]) {
      let error: unknown;
      try {
        checkSendOptions({ delayMs: 1_000, expirationMs });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as InvalidArgumentError).option).toBe('expirationMs');
      expect((error as Error).message).toContain('delayMs');
    }
    expect(() => checkSendOptions({ delayMs: 1_000 })).not.toThrow();
    expect(() => checkSendOptions({ expirationMs: 1_000 })).not.toThrow();
  });
});
