import type { PublishJob } from '../transport/outgoing';

/** The publishes written and not yet confirmed, at most `max` of them (maxInFlightPublishes). */
export class ConfirmWindow {
  private readonly jobs = new Set<PublishJob>();

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

  /** Removes and returns what passed its deadline. */
  takeExpired(now: number): PublishJob[] {
    const expired: PublishJob[] = [];
    for (const job of this.jobs) {
      if (job.deadline > now) continue;
      this.jobs.delete(job);
      expired.push(job);
    }
    return expired;
  }
}
