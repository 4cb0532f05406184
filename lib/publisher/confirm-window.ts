import type { PublishJob } from '../transport/outgoing';
import { SlotSet } from '../util/slot-set';

/**
 * The publishes written and not yet confirmed, at most `max` of them (maxInFlightPublishes). A
 * SlotSet, not a Set: jobs come and go at the publish rate (see SlotSet for what a Set costs then).
 */
export class ConfirmWindow {
  private readonly jobs = new SlotSet<'windowSlot', PublishJob>('windowSlot');

  constructor(private readonly max: number) {}

  get size(): number {
    return this.jobs.size;
  }

  get full(): boolean {
    return this.jobs.size >= this.max;
  }

  add(job: PublishJob): void {
    this.jobs.add(job);
  }

  has(job: PublishJob): boolean {
    return this.jobs.has(job);
  }

  /** False when it was gone already (it timed out meanwhile). */
  delete(job: PublishJob): boolean {
    return this.jobs.delete(job);
  }

  /** Removes and returns what passed its deadline, the first submitted first. */
  takeExpired(now: number): PublishJob[] {
    const expired: PublishJob[] = [];
    this.jobs.forEach((job) => {
      if (job.deadline > now) return;
      this.jobs.delete(job);
      expired.push(job);
    });
    return expired.sort((a, b) => a.seq - b.seq);
  }
}
