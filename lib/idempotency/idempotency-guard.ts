import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@nestjs/common';
import type { Delivery } from '../consumer/delivery';
import type { HandlerDefinition } from '../consumer/handler-definition';
import type { MessageOutcome } from '../consumer/message-outcome';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { IdempotencyClaim } from './idempotency-store.interface';
import { packReply, unpackReply } from './stored-reply';

/** Waits between looks at a key another instance holds: from 25 ms, doubling, at most 1 s. */
const BUSY_FIRST_WAIT_MS = 25;
const BUSY_MAX_WAIT_MS = 1_000;

/**
 * Runs the deliveries of an `idempotent: true` handler: at most one run per message id (per
 * queue) succeeds within the TTL. The consumer hands each delivery here instead of invoking the
 * handler itself:
 * - a message already handled is settled as a success without running the handler (a request
 *   gets the stored reply through the usual reply path);
 * - a message another instance is running now waits until that run ends: done, it is settled as
 *   above; failed (the claim is released), it runs here;
 * - otherwise the handler runs under a claim that expires after `leaseMs` (so a crashed instance
 *   blocks nobody for longer); success is recorded before the ack, so a crash in between makes
 *   the redelivery a duplicate, not a second run; a failure releases the claim, so the retry runs.
 * A message without a message id cannot be recognised and always runs.
 */
export class IdempotencyGuard {
  constructor(
    private readonly definition: HandlerDefinition,
    private readonly outcome: MessageOutcome,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
  ) {}

  async handle(delivery: Delivery, attempt: number, invoke: () => unknown): Promise<void> {
    const { messageId, replyTo } = delivery.msg.properties;
    const key = `${this.definition.queue}:${messageId}`;
    const token = randomUUID();
    let claim: IdempotencyClaim | undefined;
    let storedReply: unknown;
    try {
      claim = messageId === undefined ? { state: 'claimed' } : await this.claim(key, token, delivery.signal);
      if (claim?.state === 'done' && replyTo && claim.reply) storedReply = await unpackReply(this.options.codecs, claim.reply);
    } catch (error) {
      // The store cannot say whether this is a duplicate: handled as a failure, so it is tried later.
      return this.outcome.failed(delivery, error, attempt);
    }
    // Shutdown gave up on it while it waited: it goes back to the queue.
    if (claim === undefined) return;
    if (claim.state === 'done') return this.outcome.succeeded(delivery, storedReply, attempt);
    let result: unknown;
    let failure: { error: unknown } | undefined;
    try {
      result = await invoke();
    } catch (error) {
      failure = { error };
    }
    if (messageId !== undefined) {
      // A handler that settled its message itself (context.retry() & co.) may have asked for
      // another try: only a plain success is recorded as done.
      if (failure || delivery.settled) await this.release(key, token, messageId);
      else await this.complete(key, messageId, replyTo ? result : undefined);
    }
    return failure ? this.outcome.failed(delivery, failure.error, attempt) : this.outcome.succeeded(delivery, result, attempt);
  }

  private async complete(key: string, messageId: string, reply: unknown): Promise<void> {
    try {
      const stored = reply === undefined ? undefined : await packReply(this.options.codecs, reply);
      await this.options.idempotency.store.complete(key, this.options.idempotency.ttlMs, stored);
    } catch (error) {
      this.warn(messageId, `was handled but cannot be recorded as such (${(error as Error).message}); a copy arriving after its lease would run again`);
    }
  }

  private async release(key: string, token: string, messageId: string): Promise<void> {
    try {
      await this.options.idempotency.store.release(key, token);
    } catch (error) {
      this.warn(messageId, `keeps its claim until the lease ends: it cannot be released (${(error as Error).message})`);
    }
  }

  /** Claims the key, waiting while another run holds it; undefined if shutdown aborts the wait. */
  private async claim(key: string, token: string, signal: AbortSignal): Promise<IdempotencyClaim | undefined> {
    const { store, leaseMs } = this.options.idempotency;
    for (let looks = 0; ; looks++) {
      const claim = await store.claim(key, token, leaseMs);
      if (claim.state !== 'busy') return claim;
      try {
        await sleep(Math.min(BUSY_MAX_WAIT_MS, BUSY_FIRST_WAIT_MS * 2 ** looks), undefined, { signal });
      } catch {
        return undefined;
      }
    }
  }

  private warn(messageId: string, text: string): void {
    this.logger.warn(`${this.definition.name} message ${messageId} ${text}`);
  }
}
