/** The soak's closing lines: per group (old and newer features), the features' own figures, and per fault kind. */
import type { FaultKind, FaultLog } from './faults';
import type { GroupFigures, Ledger } from './ledger';
import { HANDLERS, type Handler, type QueueType } from './protocol';

/** Per fault kind: how often, how long in all, and the messages whose send overlapped one — how many, handled twice or more, lost. */
export function faultImpact(
  log: FaultLog,
  ledger: Ledger,
): Record<string, { injected: number; seconds: number; messages: number; handledMoreThanOnce: number; lost: number }> {
  const out: ReturnType<typeof faultImpact> = {};
  for (const [kind, injected] of Object.entries(log.counts) as Array<[FaultKind, number]>) {
    const spans = log.timeline.filter((f) => f.kind === kind);
    const row = {
      injected,
      seconds: Math.round(spans.reduce((s, f) => s + f.to - f.from, 0) / 100) / 10,
      messages: 0,
      handledMoreThanOnce: 0,
      lost: 0,
    };
    for (const m of ledger.messages()) {
      if (!spans.some((f) => m.sentAt <= f.to && m.confirmedAt >= f.from)) continue;
      row.messages++;
      if (m.runs > 1) row.handledMoreThanOnce++;
      if (m.lost) row.lost++;
    }
    out[kind] = row;
  }
  return out;
}

/**
 * Results that are wrong whatever the faults: a message dead-lettered that was not meant to be
 * (each must be handled or dead-lettered by design), a late settlement call accepted, a message
 * given to the wrong handler of a shared queue, a delayed message early, an outbox row of a
 * rolled-back transaction, a committed outbox message not in its table.
 */
export function violations(ledger: Ledger, groups: Record<Handler, GroupFigures>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const g of HANDLERS) {
    const otherwise = groups[g].deadLettered - groups[g].deadLetteredByDesign;
    if (otherwise > 0) out[`${g} dead-lettered not by design`] = otherwise;
  }
  for (const [key, value] of Object.entries(ledger.counters)) {
    if (/^late .*: (accepted|threw )/.test(key) || / given to the wrong handler$/.test(key) || key === 'delayed delivered early')
      out[key] = value;
  }
  const { rolledBackButSent, committedButNotInTable } = ledger.outbox;
  if (rolledBackButSent > 0) out['outbox rows of rolled-back transactions sent'] = rolledBackButSent;
  if (committedButNotInTable > 0) out['outbox committed but not in its table'] = committedButNotInTable;
  return out;
}

export function printSummary(
  groups: Record<Handler, GroupFigures>,
  held: Record<Handler, number>,
  lost: number,
  l: Ledger,
  log: FaultLog,
  queueType: QueueType,
): void {
  const row = (g: Handler) => {
    const f = groups[g];
    return (
      `${g.padEnd(10)} expected ${f.expected}, handled ${f.handled}, duplicates ${f.duplicates}, still queued ${f.stillQueued}, ` +
      `dead-lettered ${f.deadLettered} (${f.deadLetteredByDesign} by design)` +
      (f.droppedByDesign > 0 ? `, dropped by design ${f.droppedByDesign}` : '') +
      (g === 'outbox' ? `, still in the outbox ${f.stillInOutbox}` : '') +
      (f.deletedByFaultDriver + f.inFlightToADeletedQueue + f.unroutableWhileQueueAway + f.droppedByClassicDeadLettering > 0 ||
      ['command', 'audit', 'billing'].includes(g)
        ? `, deleted by the fault driver ${f.deletedByFaultDriver} (+${f.inFlightToADeletedQueue} in flight to a queue it deleted), ` +
          `unroutable while its queue was away ${f.unroutableWhileQueueAway}` +
          (queueType === 'classic' ? `, dropped by classic dead-lettering while its queue was away ${f.droppedByClassicDeadLettering}` : '')
        : '') +
      `, lost ${f.lost}` +
      (held[g] > 0 ? `; ${held[g]} copies still held by its retry queues for dead-lettering (not in any figure: known by count only)` : '')
    );
  };
  console.log(
    `\nsent: ${l.sent.confirmed} confirmed, ${l.sent.rejected} rejected (${JSON.stringify(l.sent.rejectedBy)}), ${l.sent.rejectedButHandled} of those handled anyway`,
  );
  for (const g of HANDLERS) console.log(row(g));
  console.log(`requests: ${l.requestsAnswered} answered, failed ${JSON.stringify(l.requestsFailed)}`);
  console.log(`dead-lettered by error: ${JSON.stringify(l.deadLetteredBy())}`);
  console.log(`outbox transactions: ${JSON.stringify(l.outbox)}`);
  console.log(`feature counters: ${JSON.stringify(l.counters)}`);
  console.log('per fault (messages whose send overlapped one):');
  for (const [kind, f] of Object.entries(faultImpact(log, l))) {
    console.log(
      `  ${kind.padEnd(18)} injected ${f.injected} (${f.seconds} s), messages ${f.messages}, handled more than once ${f.handledMoreThanOnce}, lost ${f.lost}`,
    );
  }
  const wrong = violations(l, groups);
  console.log(Object.keys(wrong).length > 0 ? `VIOLATIONS ${JSON.stringify(wrong)}` : 'violations 0');
  console.log(lost > 0 ? `LOST ${lost}` : 'lost 0');
}
