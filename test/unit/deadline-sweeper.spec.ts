import { DeadlineSweeper } from '../../lib/publisher/deadline-sweeper';

describe('DeadlineSweeper', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  /** A sweep that reports work left for `rounds` calls, then none. */
  function sweepFor(rounds: number) {
    let calls = 0;
    return {
      sweep: () => ++calls < rounds,
      calls: () => calls,
    };
  }

  it('sweeps every 50 ms while there is work left', () => {
    const { sweep, calls } = sweepFor(Infinity);
    const sweeper = new DeadlineSweeper(sweep);
    sweeper.start();
    vi.advanceTimersByTime(49);
    expect(calls()).toBe(0);
    vi.advanceTimersByTime(1);
    expect(calls()).toBe(1);
    vi.advanceTimersByTime(500);
    expect(calls()).toBe(11);
    sweeper.stop();
  });

  it('stops by itself after the first sweep that reports nothing pending', () => {
    const { sweep, calls } = sweepFor(3);
    const sweeper = new DeadlineSweeper(sweep);
    sweeper.start();
    vi.advanceTimersByTime(1_000);
    expect(calls()).toBe(3);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('keeps one timer however often it is started', () => {
    const { sweep, calls } = sweepFor(Infinity);
    const sweeper = new DeadlineSweeper(sweep);
    sweeper.start();
    sweeper.start();
    sweeper.start();
    expect(vi.getTimerCount()).toBe(1);
    vi.advanceTimersByTime(100);
    expect(calls()).toBe(2);
    sweeper.stop();
  });

  it('stop() clears the timer, and a later start() runs again', () => {
    const { sweep, calls } = sweepFor(Infinity);
    const sweeper = new DeadlineSweeper(sweep);
    sweeper.start();
    sweeper.stop();
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(200);
    expect(calls()).toBe(0);
    sweeper.start();
    vi.advanceTimersByTime(50);
    expect(calls()).toBe(1);
    sweeper.stop();
  });

  it('starts again after stopping by itself, when new work comes', () => {
    let pending = true;
    let calls = 0;
    const sweeper = new DeadlineSweeper(() => (calls++, pending));
    sweeper.start();
    pending = false;
    vi.advanceTimersByTime(50);
    expect(vi.getTimerCount()).toBe(0);
    pending = true;
    sweeper.start();
    vi.advanceTimersByTime(100);
    expect(calls).toBe(3);
    sweeper.stop();
  });

  it('stop() before any start is harmless', () => {
    expect(() => new DeadlineSweeper(() => true).stop()).not.toThrow();
  });
});

describe('DeadlineSweeper timer', () => {
  it('does not keep the process alive (unref), so a publisher with pending deadlines never blocks exit', () => {
    // Real timers: whether Node counts the interval is what matters here. Stopped at once, never waited on.
    const sweeper = new DeadlineSweeper(() => true);
    sweeper.start();
    const timer = (sweeper as unknown as { timer: NodeJS.Timeout }).timer;
    expect(timer.hasRef()).toBe(false);
    sweeper.stop();
  });
});
