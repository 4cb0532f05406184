import { Injectable } from '@nestjs/common';
import { TrackContext } from '../../lib';

export interface Activity {
  kind: 'billing.charged' | 'customer.notified';
  orderId: string;
  /** Id of the event message that caused it. */
  eventId?: string;
  requestId?: string;
  at: string;
}

const KEPT = 1_000;

/** What the event subscribers did, most recent last (in memory; a real app has a database). */
@Injectable()
export class ActivityLog {
  private readonly entries: Activity[] = [];

  constructor(private readonly track: TrackContext) {}

  record(kind: Activity['kind'], orderId: string, eventId?: string): void {
    this.entries.push({ kind, orderId, eventId, requestId: this.track.requestId, at: new Date().toISOString() });
    if (this.entries.length > KEPT) this.entries.shift();
  }

  forOrder(orderId: string): Activity[] {
    return this.entries.filter((entry) => entry.orderId === orderId);
  }
}
