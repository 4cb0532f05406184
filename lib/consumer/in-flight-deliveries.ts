import type { Delivery } from './delivery';
import { within } from '../util/within';

/**
 * The deliveries of one consumer that its handler has not settled yet: what shutdown waits for
 * (drain), gives up on (abandon) and puts back.
 */
export class InFlightDeliveries {
  private readonly deliveries = new Set<Delivery>();
  private drainWaiters: Array<() => void> = [];

  get size(): number {
    return this.deliveries.size;
  }

  add(delivery: Delivery): void {
    this.deliveries.add(delivery);
  }

  /** The delivery is settled (or given up on and put back): it no longer holds a drain. */
  delete(delivery: Delivery): void {
    this.deliveries.delete(delivery);
    if (this.deliveries.size === 0 && this.drainWaiters.length > 0) {
      for (const done of this.drainWaiters.splice(0)) done();
    }
  }

  /** Resolves when nothing is in flight or at the deadline, whichever comes first. */
  async drain(deadline: number): Promise<void> {
    if (this.deliveries.size === 0) return;
    await within(new Promise<void>((resolve) => this.drainWaiters.push(resolve)), Math.max(0, deadline - Date.now()));
  }

  /** Signals abort to every handler still running; returns their deliveries. */
  abandon(reason: Error): Delivery[] {
    const left = [...this.deliveries];
    for (const delivery of left) delivery.abandon(reason);
    return left;
  }

  /** What shutdown gave up on and nobody acked: to be put back, unchanged, before the channel closes. */
  abandonedUnacked(): Delivery[] {
    return [...this.deliveries].filter((delivery) => delivery.abandoned && !delivery.acked);
  }
}
