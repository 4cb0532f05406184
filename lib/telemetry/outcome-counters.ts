import { CountingTelemetry } from './counting.telemetry';
import type { SettleOutcome, Telemetry } from './telemetry.interface';

/** Deliveries of one queue settled since this instance started, by how they ended. */
export type OutcomeCounts = Readonly<Record<SettleOutcome, number>>;

/**
 * One connection's counts of settled deliveries per queue, in this process, for an operator's
 * view. Nothing counts unless a plug-in that reads them asks (COUNT_OUTCOMES): only then does
 * `around` put a CountingTelemetry in front of the connection's telemetry.
 */
export class OutcomeCounters {
  private readonly byQueue = new Map<string, Record<SettleOutcome, number>>();
  private counting = false;

  /** `telemetry`, with every settled delivery counted here first. */
  around(telemetry: Telemetry): Telemetry {
    this.counting = true;
    return new CountingTelemetry(telemetry, this);
  }

  record(queue: string, outcome: SettleOutcome): void {
    let counts = this.byQueue.get(queue);
    if (!counts) this.byQueue.set(queue, (counts = none()));
    counts[outcome]++;
  }

  /** The counts of `queue` (zero until its first delivery settles); undefined when nothing counts. */
  of(queue: string): OutcomeCounts | undefined {
    if (!this.counting) return undefined;
    return { ...(this.byQueue.get(queue) ?? none()) };
  }
}

function none(): Record<SettleOutcome, number> {
  return { acked: 0, retried: 0, dead_lettered: 0, requeued: 0 };
}
