import type { Telemetry } from '../telemetry/telemetry.interface';
import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import { ExchangeNotFoundError, PublishRefusedError } from '../messaging.errors';
import type { ResolvedMessagingOptions, ResolvedOutbox } from '../messaging.options';
import type { Publisher } from '../publisher/publisher';
import { within } from '../util/within';
import type { OutboxRow, OutboxTable, RowFailure } from './outbox-table';
import { OutboxWakeups } from './outbox-wakeups';
import { inTransaction, type QueryLimits, withClient } from '../postgres/postgres';

/** Sent rows are deleted at least this often (when retention is longer). */
const CLEANUP_MAX_INTERVAL_MS = 60_000;
/** The longest `statement_timeout` / `idle_in_transaction_session_timeout` PostgreSQL takes. */
const PG_MAX_TIMEOUT_MS = 2 ** 31 - 1;

/**
 * Publishes what writers committed to the outbox table. Each batch is one transaction: lock up
 * to `batchSize` due rows in id order (`FOR UPDATE SKIP LOCKED`: another instance's relay takes
 * the next rows meanwhile), publish them in that order through the module's publisher and wait
 * for the broker's confirms, mark the confirmed ones sent, COMMIT. A crash before the COMMIT
 * unlocks the rows and they are published again (same message id: an `idempotent` consumer drops
 * the copy). A row whose publish failed (broker down past the publish timeout, unroutable, nacked)
 * is due again after a back-off that doubles with its tries (the module's reconnect delays);
 * rows behind it go on, so one such row delays nothing else. A row the broker refuses for its
 * exchange (missing, or not ours to write to) is parked instead: each try would close the publish
 * channel that every other message of the app shares. Batches follow one another while they
 * come back full; then the relay waits for a notification or the poll.
 *
 * Every statement, and getting a connection, has a deadline (`outbox.queryTimeoutMs`): on a
 * half-open connection the answer never comes, and the relay would wait for it forever. The
 * batch then fails, its connection is closed, and the next one (after a back-off) takes a new
 * connection; the server ends the old session's transaction by `idle_in_transaction_session_timeout`.
 */
export class OutboxRelay {
  private readonly wakeups: OutboxWakeups;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;
  /** Batches in a row that failed on the database side: how long the next one waits. */
  private failures = 0;
  private retryTimer?: NodeJS.Timeout;
  private lastCleanup = Date.now();
  private readonly limits: QueryLimits;
  /** Rows this relay published and marked sent. */
  relayed = 0;
  /** Rows this relay parked: their exchange was refused. */
  parked = 0;

  constructor(
    private readonly outbox: ResolvedOutbox,
    private readonly table: OutboxTable,
    private readonly publisher: Publisher,
    private readonly options: Pick<ResolvedMessagingOptions, 'publishTimeoutMs' | 'reconnect'>,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
  ) {
    this.wakeups = new OutboxWakeups(outbox, table.channel, options.reconnect, logger, () => this.wake());
    // Between two statements of a batch the relay publishes, for up to publishTimeoutMs.
    this.limits = { queryMs: outbox.queryTimeoutMs, idleMs: Math.min(PG_MAX_TIMEOUT_MS, options.publishTimeoutMs + outbox.queryTimeoutMs) };
  }

  start(): void {
    this.wakeups.start();
    this.wake();
  }

  /**
   * No new batch starts; the one in flight is published, marked and committed, waited for up to
   * `timeoutMs` (past it, its rows stay unsent and locked until its connection goes, then any
   * relay sends them).
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    this.wakeups.stop();
    if (this.running) await within(this.running, timeoutMs);
  }

  private wake(): void {
    // While backing off, neither the poll nor a notification starts a batch: only the timer does.
    if (this.stopped || this.retryTimer) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.batches().finally(() => (this.running = undefined));
  }

  private async batches(): Promise<void> {
    do {
      this.again = false;
      try {
        if (await this.relayBatch()) this.again = true;
        this.failures = 0;
        await this.cleanUpNowAndThen();
      } catch (error) {
        const delay = backoffDelay(this.failures++, this.options.reconnect.initialDelayMs, this.options.reconnect.maxDelayMs);
        this.logger.error(`Outbox relay: ${(error as Error).message}; trying again in ${delay} ms`);
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          this.wake();
        }, delay);
        this.retryTimer.unref();
        return;
      }
    } while (this.again && !this.stopped);
  }

  /** One transaction; whether it took a full batch (more may be waiting). */
  private async relayBatch(): Promise<boolean> {
    const { reconnect } = this.options;
    const { rows, sent, failed, parked } = await inTransaction(
      this.outbox.pool,
      async (client) => {
        const taken = await this.table.take(client, this.outbox.batchSize);
        const outcomes = await Promise.allSettled(taken.map((row) => this.publish(row)));
        const published: string[] = [];
        const retried: RowFailure[] = [];
        const refused: Array<RowFailure & Pick<OutboxRow, 'exchange'>> = [];
        taken.forEach((row, i) => {
          const outcome = outcomes[i];
          if (outcome.status === 'fulfilled') published.push(row.id);
          else if (isRefusal(outcome.reason)) refused.push({ id: row.id, error: describe(outcome.reason), exchange: row.exchange });
          else retried.push({ id: row.id, error: describe(outcome.reason) });
        });
        if (published.length > 0) await this.table.markSent(client, published);
        if (retried.length > 0) await this.table.markFailed(client, retried, reconnect.initialDelayMs, reconnect.maxDelayMs);
        if (refused.length > 0) await this.table.park(client, refused);
        return { rows: taken, sent: published, failed: retried, parked: refused };
      },
      this.limits,
    );
    this.relayed += sent.length;
    this.parked += parked.length;
    // Counted once committed: a batch that fails is taken again, and would count its rows twice.
    for (const { exchange } of parked) this.telemetry.incident('outboxParked', exchange);
    if (failed.length > 0) {
      this.logger.warn(
        `Outbox relay: ${failed.length} of ${rows.length} messages not published (${failed[0].error}); each is tried again after a back-off`,
      );
    }
    if (parked.length > 0) {
      const table = this.outbox.table.sql;
      this.logger.warn(
        `Outbox relay: ${parked.length} messages parked, not tried again (${parked[0].error}): ` +
          `they stay in ${table} with available_at = 'infinity'; to send them once their exchange is fixed: ` +
          `UPDATE ${table} SET available_at = now() WHERE sent_at IS NULL AND available_at = 'infinity'`,
      );
    }
    return rows.length === this.outbox.batchSize;
  }

  private publish(row: OutboxRow): Promise<string> {
    return this.publisher.publish({ exchange: row.exchange, routingKey: row.routingKey, content: row.content, properties: row.properties });
  }

  private async cleanUpNowAndThen(): Promise<void> {
    const { retentionMs, pollIntervalMs, pool } = this.outbox;
    if (Date.now() - this.lastCleanup < Math.min(CLEANUP_MAX_INTERVAL_MS, Math.max(retentionMs, pollIntervalMs))) return;
    this.lastCleanup = Date.now();
    await withClient(pool, (client) => this.table.clean(client, retentionMs), this.outbox.queryTimeoutMs);
  }
}

/** The broker refused the row's exchange (it closed the publish channel over it): trying again would do the same. */
function isRefusal(reason: unknown): boolean {
  return reason instanceof ExchangeNotFoundError || reason instanceof PublishRefusedError;
}

function describe(reason: unknown): string {
  return reason instanceof Error ? `${reason.name}: ${reason.message}` : String(reason);
}
