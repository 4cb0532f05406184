/**
 * The soak's books: what producers had confirmed, what handlers handled (per group), what is
 * still queued or dead-lettered at the end, and from that what is lost — a confirmed message
 * that no explanation covers (handled, queued, dead-lettered, deleted with a queue by the fault
 * driver — counted, or in flight to the queue while it was being deleted — or unroutable to a
 * group while the driver had its queue away).
 */
import type { Batch, Confirmed, Handler, Rejected } from './protocol';
import type { FaultLog } from './faults';

const GROUPS: Handler[] = ['command', 'audit', 'billing'];

export interface GroupFigures {
  expected: number;
  handled: number;
  duplicates: number;
  stillQueued: number;
  deadLettered: number;
  deletedByFaultDriver: number;
  unroutableWhileQueueAway: number;
  inFlightToADeletedQueue: number;
  lost: number;
  /** Some of the unexplained ones (which exactly is a guess when the fault driver deleted messages too), with when they were sent. */
  lostIds: Array<{ id: string; sentAt: number; confirmedAt: number }>;
}

export class Ledger {
  private readonly confirmed = new Map<string, Confirmed>();
  private readonly rejected = new Map<string, Rejected>();
  private readonly handled = new Map<string, number>();
  private readonly queued = new Map<Handler, Set<string>>(GROUPS.map((g) => [g, new Set()]));
  private readonly dead = new Map<Handler, Map<string, string>>(GROUPS.map((g) => [g, new Map()]));
  failedTries = 0;
  requestsAnswered = 0;
  readonly requestsFailed: Record<string, number> = {};
  readonly missingExchange: Record<string, number> = {};

  add(batch: Batch): void {
    for (const c of batch.confirmed) this.confirmed.set(c.id, c);
    for (const r of batch.rejected) this.rejected.set(r.id, r);
    for (const h of batch.handled) this.handled.set(`${h.handler}:${h.id}`, (this.handled.get(`${h.handler}:${h.id}`) ?? 0) + 1);
    this.failedTries += batch.failedTries;
    this.requestsAnswered += batch.requests.answered;
    addCounts(this.requestsFailed, batch.requests.failed);
    addCounts(this.missingExchange, batch.missingExchange);
  }

  queuedIn(handler: Handler, ids: string[]): void {
    for (const id of ids) this.queued.get(handler)!.add(id);
  }

  deadIn(handler: Handler, entries: Array<{ id: string; error: string }>): void {
    for (const { id, error } of entries) this.dead.get(handler)!.set(id, error);
  }

  /** Confirmed messages a group has not handled yet (for the drain). */
  outstanding(): number {
    let count = 0;
    for (const handler of GROUPS) for (const c of this.expectedBy(handler)) if (!this.handled.has(`${handler}:${c.id}`)) count++;
    return count;
  }

  get sent(): { confirmed: number; rejected: number; rejectedButHandled: number; rejectedBy: Record<string, number> } {
    const rejectedBy: Record<string, number> = {};
    let rejectedButHandled = 0;
    for (const r of this.rejected.values()) {
      rejectedBy[r.error] = (rejectedBy[r.error] ?? 0) + 1;
      if (GROUPS.some((g) => this.handled.has(`${g}:${r.id}`))) rejectedButHandled++;
    }
    return { confirmed: this.confirmed.size, rejected: this.rejected.size, rejectedButHandled, rejectedBy };
  }

  /** Dead-lettered copies by the error that sent them there. */
  deadLetteredBy(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const group of this.dead.values()) for (const error of group.values()) out[error] = (out[error] ?? 0) + 1;
    return out;
  }

  figures(faults: FaultLog): Record<Handler, GroupFigures> {
    const out = {} as Record<Handler, GroupFigures>;
    for (const handler of GROUPS) {
      const expected = this.expectedBy(handler);
      let handled = 0;
      let duplicates = 0;
      const missing: Confirmed[] = [];
      for (const c of expected) {
        const times = this.handled.get(`${handler}:${c.id}`) ?? 0;
        if (times > 0) {
          handled++;
          duplicates += times - 1;
        } else if (!this.queued.get(handler)!.has(c.id) && !this.dead.get(handler)!.has(c.id)) missing.push(c);
      }
      const overlaps = (c: Confirmed, spans: Array<[number, number]>) => spans.some(([from, to]) => c.sentAt <= to && c.confirmedAt >= from);
      // An event is routed when it is published: while a group's queue was away it reached no
      // queue of that group. (A command to a missing queue is refused, so it was never confirmed.)
      const unroutable = handler === 'command' ? [] : missing.filter((c) => overlaps(c, faults.windows[handler]));
      const inFlight = missing.filter((c) => !unroutable.includes(c) && overlaps(c, faults.deletions[handler]));
      const unexplained = missing.filter((c) => !unroutable.includes(c) && !inFlight.includes(c));
      const deleted = Math.min(unexplained.length, faults.deleted[handler]);
      const lostIds = unexplained.slice(deleted).map(({ id, sentAt, confirmedAt }) => ({ id, sentAt, confirmedAt }));
      out[handler] = {
        expected: expected.length,
        handled,
        duplicates,
        stillQueued: countIn(this.queued.get(handler)!, expected),
        deadLettered: countIn(new Set(this.dead.get(handler)!.keys()), expected),
        deletedByFaultDriver: faults.deleted[handler],
        unroutableWhileQueueAway: unroutable.length,
        inFlightToADeletedQueue: inFlight.length,
        lost: Math.max(0, unexplained.length - faults.deleted[handler]),
        lostIds: lostIds.slice(0, 20),
      };
    }
    return out;
  }

  private expectedBy(handler: Handler): Confirmed[] {
    const kind = handler === 'command' ? 'command' : 'event';
    return [...this.confirmed.values()].filter((c) => c.kind === kind);
  }
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

function countIn(ids: Set<string>, expected: Confirmed[]): number {
  return expected.filter((c) => ids.has(c.id)).length;
}
