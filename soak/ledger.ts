/**
 * The soak's books: what producers had confirmed (an outbox message: what its table holds), what
 * handlers tried and handled (per group), what is still queued or dead-lettered at the end, and
 * from that what is lost — a confirmed message that no explanation covers (handled, queued,
 * dead-lettered, dropped by design, deleted with a queue by the fault driver — counted, or in
 * flight to the queue while it was being deleted — or unroutable to a group while the driver had
 * its queue away; with classic queues also a retry copy RabbitMQ dead-lettered into the handler
 * queue while it was away).
 */
import type { Batch, Confirmed, Handler, OutboxAttempt, QueueType, Rejected } from './protocol';
import { groupsOf, HANDLERS, RETRY } from './protocol';
import type { OutboxRow } from './data-faults';
import type { Deletion, FaultLog } from './faults';

const GROUPS = HANDLERS;

export interface GroupFigures {
  expected: number;
  handled: number;
  duplicates: number;
  stillQueued: number;
  deadLettered: number;
  /** Of the dead-lettered: those meant to be (context.deadLetter, a type no handler takes). */
  deadLetteredByDesign: number;
  /** Dropped by their handler on purpose (`nack({ requeue: false })`). */
  droppedByDesign: number;
  /** Outbox only: committed rows no relay had sent at the end. */
  stillInOutbox: number;
  deletedByFaultDriver: number;
  unroutableWhileQueueAway: number;
  inFlightToADeletedQueue: number;
  /** Classic only: retry copies whose TTL may have expired while the handler queue was away (RabbitMQ drops them). */
  droppedByClassicDeadLettering: number;
  lost: number;
  /**
   * The first unexplained ones, with when they were sent (which ones exactly is a guess when
   * deleted messages, known only by count, covered some).
   */
  lostIds: Array<{ id: string; sentAt: number; confirmedAt: number; failedTries: number[] }>;
}

/**
 * How long after a failed try its retry copy may still have been published: the module publishes
 * it at once, unless the publisher is reconnecting. Used only to explain classic losses.
 */
const COPY_PUBLISH_SLACK_MS = 3000;
/** From a failed try to its retry copy's publish: the copy goes out right after the failure. */
const RETRY_COPY_SLACK_MS = 500;

export class Ledger {
  private readonly confirmed = new Map<string, Confirmed>();
  private readonly rejected = new Map<string, Rejected>();
  private readonly handled = new Map<string, number>();
  /** Per `<group>:<id>`, the tries that threw on purpose: when, and the delay of the retry each one asked for. */
  private readonly failed = new Map<string, Array<{ at: number; delayMs: number; attempt: number }>>();
  private readonly queued = new Map<Handler, Set<string>>(GROUPS.map((g) => [g, new Set()]));
  private readonly dead = new Map<Handler, Map<string, string>>(GROUPS.map((g) => [g, new Map()]));
  /** `<group>:<id>` of the messages a handler dropped on purpose. */
  private readonly dropped = new Set<string>();
  /** Outbox transactions that did not surely commit, by message id. */
  private readonly outboxAttempts = new Map<string, OutboxAttempt>();
  /** The outbox table at the end: what committed, and whether a relay sent it. */
  private outboxRows?: Map<string, boolean>;
  /** `<group>:<id>` of every lost message, once figured. */
  readonly lostKeys = new Set<string>();
  failedTries = 0;
  requestsAnswered = 0;
  readonly requestsFailed: Record<string, number> = {};
  readonly missingExchange: Record<string, number> = {};
  readonly counters: Record<string, number> = {};

  add(batch: Batch): void {
    for (const c of batch.confirmed) this.confirmed.set(c.id, c);
    for (const r of batch.rejected) this.rejected.set(r.id, r);
    for (const h of batch.handled) this.handled.set(`${h.handler}:${h.id}`, (this.handled.get(`${h.handler}:${h.id}`) ?? 0) + 1);
    for (const f of batch.failed) {
      const key = `${f.handler}:${f.id}`;
      const delayMs = RETRY.delaysMs[Math.min(f.attempt - 1, RETRY.delaysMs.length - 1)];
      this.failed.set(key, [...(this.failed.get(key) ?? []), { at: f.at, delayMs, attempt: f.attempt }]);
    }
    for (const d of batch.dropped) this.dropped.add(`${d.handler}:${d.id}`);
    for (const o of batch.outbox) this.outboxAttempts.set(o.id, o);
    addCounts(this.counters, batch.counters);
    this.failedTries += batch.failed.length;
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

  /** What the outbox table holds at the end (read before the figures). */
  outboxTable(rows: OutboxRow[]): void {
    this.outboxRows = new Map(rows.map((r) => [r.id, r.sent]));
  }

  /** Confirmed messages a group has not handled yet, those meant to end otherwise left out (for the drain). */
  outstanding(): number {
    let count = 0;
    for (const handler of GROUPS)
      for (const c of this.expectedBy(handler)) if (!c.design && !this.handled.has(`${handler}:${c.id}`)) count++;
    return count;
  }

  /** Outbox transactions: committed, rolled back on purpose, failed (and of those, committed after all), and what must never happen. */
  get outbox(): {
    committed: number;
    rolledBack: number;
    failed: Record<string, number>;
    failedButCommitted: number;
    rolledBackButSent: number;
    committedButNotInTable: number;
  } {
    const rows = this.outboxRows ?? new Map<string, boolean>();
    const failed: Record<string, number> = {};
    let rolledBack = 0;
    let failedButCommitted = 0;
    let rolledBackButSent = 0;
    for (const o of this.outboxAttempts.values()) {
      if (o.outcome === 'rolled-back') {
        rolledBack++;
        if (rows.has(o.id) || this.handled.has(`outbox:${o.id}`)) rolledBackButSent++;
      } else {
        failed[o.outcome] = (failed[o.outcome] ?? 0) + 1;
        if (rows.has(o.id)) failedButCommitted++;
      }
    }
    const committed = [...this.confirmed.values()].filter((c) => c.kind === 'outbox');
    return {
      committed: committed.length,
      rolledBack,
      failed,
      failedButCommitted,
      rolledBackButSent,
      committedButNotInTable: committed.filter((c) => !rows.has(c.id)).length,
    };
  }

  /** Every expected message of every group, with how often it was handled and whether it is lost (after `figures`). */
  *messages(): Generator<{ group: Handler; id: string; sentAt: number; confirmedAt: number; runs: number; lost: boolean }> {
    for (const group of GROUPS) {
      for (const c of this.expectedBy(group)) {
        const key = `${group}:${c.id}`;
        yield {
          group,
          id: c.id,
          sentAt: c.sentAt,
          confirmedAt: c.confirmedAt,
          runs: this.handled.get(key) ?? 0,
          lost: this.lostKeys.has(key),
        };
      }
    }
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

  figures(faults: FaultLog, queueType: QueueType): Record<Handler, GroupFigures> {
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
        } else if (
          !this.queued.get(handler)!.has(c.id) &&
          !this.dead.get(handler)!.has(c.id) &&
          !this.dropped.has(`${handler}:${c.id}`) &&
          this.outboxRows?.get(c.id) !== false
        ) {
          missing.push(c);
        }
      }
      const failures = (c: Confirmed) => this.failed.get(`${handler}:${c.id}`) ?? [];
      const overlaps = (from: number, to: number, spans: Array<[number, number]>) => spans.some(([a, b]) => from <= b && to >= a);
      const publishOverlaps = (c: Confirmed, spans: Array<[number, number]>) => overlaps(c.sentAt, c.confirmedAt, spans);
      // Missing its queue on the way in explains only a message the group never saw: one that
      // failed a try was in the queue, and what became of it since is the module's doing.
      // An event is routed when it is published: while a group's queue was away it reached no
      // queue of that group. (A command to a missing queue is refused, so it was never confirmed.)
      const unroutable =
        handler === 'command' ? [] : missing.filter((c) => failures(c).length === 0 && publishOverlaps(c, faults.windows[handler]));
      const inFlightToMain = missing.filter(
        (c) => failures(c).length === 0 && !unroutable.includes(c) && publishOverlaps(c, faults.deletions[handler]),
      );
      // A failed try's retry copy is published at once: one published while its retry queue was
      // being deleted is confirmed by RabbitMQ and gone with the queue, like a message above.
      const inFlightToRetry = missing.filter(
        (c) =>
          !inFlightToMain.includes(c) &&
          failures(c).some((f) => overlaps(f.at, f.at + RETRY_COPY_SLACK_MS, faults.retryDeletions[handler])),
      );
      const inFlight = [...inFlightToMain, ...inFlightToRetry];
      // Classic dead-lettering is at-most-once: a copy expiring while the handler queue is away is dropped.
      const away = [...faults.windows[handler], ...faults.deletions[handler]];
      const dropped =
        queueType === 'classic'
          ? missing.filter((c) => failures(c).some((f) => overlaps(f.at + f.delayMs, f.at + f.delayMs + COPY_PUBLISH_SLACK_MS, away)))
          : [];
      const rest = missing.filter((c) => !unroutable.includes(c) && !inFlight.includes(c) && !dropped.includes(c));
      const deleted = coveredByDeletions(
        rest,
        faults.deleted.filter((d) => d.handler === handler),
        (c) => failures(c).map((f) => f.at),
      );
      const unexplained = rest.filter((c) => !deleted.has(c));
      for (const c of unexplained) this.lostKeys.add(`${handler}:${c.id}`);
      const dead = this.dead.get(handler)!;
      // The module gives a quorum queue a dead-letter target, so RabbitMQ moves what a handler
      // drops there (nack without requeue) into its .dlq: by design too.
      const droppedIntoDlq = (c: Confirmed) => queueType === 'quorum' && c.design === 'drop' && this.dropped.has(`${handler}:${c.id}`);
      // A message whose last try the policy allows failed on purpose is dead-lettered as the policy
      // says: e.g. one that sat in a batch with a message failing its first try, four times over.
      const policyExhausted = (c: Confirmed) => failures(c).some((f) => f.attempt >= RETRY.attempts);
      out[handler] = {
        expected: expected.length,
        handled,
        duplicates,
        stillQueued: countIn(this.queued.get(handler)!, expected),
        deadLettered: countIn(new Set(dead.keys()), expected),
        deadLetteredByDesign: expected.filter(
          (c) => dead.has(c.id) && (c.design === 'dead-letter' || droppedIntoDlq(c) || policyExhausted(c)),
        ).length,
        droppedByDesign: expected.filter((c) => c.design === 'drop' && this.dropped.has(`${handler}:${c.id}`) && !dead.has(c.id)).length,
        stillInOutbox: handler === 'outbox' ? expected.filter((c) => this.outboxRows?.get(c.id) === false).length : 0,
        deletedByFaultDriver: faults.deleted.filter((d) => d.handler === handler).reduce((sum, d) => sum + d.count, 0),
        unroutableWhileQueueAway: unroutable.length,
        inFlightToADeletedQueue: inFlight.length,
        droppedByClassicDeadLettering: dropped.length,
        lost: unexplained.length,
        lostIds: unexplained
          .slice(0, 20)
          .map((c) => ({ id: c.id, sentAt: c.sentAt, confirmedAt: c.confirmedAt, failedTries: failures(c).map((f) => f.at) })),
      };
    }
    return out;
  }

  /**
   * What a group must account for: what was confirmed to it; for the outbox, also the rows of
   * transactions whose COMMIT failed yet committed (the table tells).
   */
  private expectedBy(handler: Handler): Confirmed[] {
    const confirmed = [...this.confirmed.values()].filter((c) => groupsOf(c.kind).includes(handler));
    if (handler !== 'outbox' || !this.outboxRows) return confirmed;
    const committedAfterAll = [...this.outboxAttempts.values()]
      .filter((o) => o.outcome !== 'rolled-back' && this.outboxRows!.has(o.id))
      .map((o): Confirmed => ({ kind: 'outbox', id: o.id, sentAt: o.sentAt, confirmedAt: o.sentAt }));
    return [...confirmed, ...committedAfterAll];
  }
}

function addCounts(into: Record<string, number>, from: Record<string, number>): void {
  for (const [key, value] of Object.entries(from)) into[key] = (into[key] ?? 0) + value;
}

function countIn(ids: Set<string>, expected: Confirmed[]): number {
  return expected.filter((c) => ids.has(c.id)).length;
}

/**
 * The missing messages that the messages deleted with queues (known only by count) can account
 * for: a message can have gone with a handler queue deleted after it was sent, or with a retry
 * queue deleted after one of its tries failed. Earliest deletions first, each taking the
 * earliest-sent messages that could have been in it.
 */
function coveredByDeletions(missing: Confirmed[], deletions: Deletion[], failedAt: (c: Confirmed) => number[]): Set<Confirmed> {
  const covered = new Set<Confirmed>();
  const bySent = [...missing].sort((a, b) => a.sentAt - b.sentAt);
  for (const deletion of [...deletions].sort((a, b) => a.at - b.at)) {
    let left = deletion.count;
    for (const c of bySent) {
      if (left === 0) break;
      if (covered.has(c)) continue;
      const couldBeIn = deletion.queue === 'main' ? c.sentAt <= deletion.at : failedAt(c).some((at) => at <= deletion.at);
      if (couldBeIn) {
        covered.add(c);
        left--;
      }
    }
  }
  return covered;
}
