import type { OutcomeCounts } from '../telemetry/outcome-counters';

/** How far back rates look. */
export const RATE_WINDOW_MS = 60_000;

interface Sample {
  at: number;
  counts: OutcomeCounts;
}

/** Deliveries per minute, by outcome. */
export type OutcomeRates = OutcomeCounts;

/**
 * Per-minute rates of each queue's outcome counts, from samples taken now and then (the console
 * takes one every 10 s): the change since the oldest sample of the last minute. Nothing per
 * message; a few samples per queue.
 */
export class OutcomeRateWindow {
  private readonly samples = new Map<string, Sample[]>();

  record(key: string, counts: OutcomeCounts, at: number): void {
    const kept = (this.samples.get(key) ?? []).filter((sample) => at - sample.at <= RATE_WINDOW_MS);
    kept.push({ at, counts });
    this.samples.set(key, kept);
  }

  /** The rates up to `counts` read at `at`; undefined until a sample at least a second older exists. */
  rates(key: string, counts: OutcomeCounts, at: number): OutcomeRates | undefined {
    const oldest = (this.samples.get(key) ?? []).find((sample) => at - sample.at <= RATE_WINDOW_MS);
    return oldest ? ratesBetween(oldest, { at, counts }) : undefined;
  }
}

/** The per-minute rates between two samples; undefined when they are less than a second apart. */
export function ratesBetween(from: Sample, to: Sample): OutcomeRates | undefined {
  const minutes = (to.at - from.at) / 60_000;
  if (minutes < 1 / 60) return undefined;
  const rate = (outcome: keyof OutcomeCounts) => Math.max(0, to.counts[outcome] - from.counts[outcome]) / minutes;
  return { acked: rate('acked'), retried: rate('retried'), dead_lettered: rate('dead_lettered'), requeued: rate('requeued') };
}
