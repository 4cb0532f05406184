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
    const { store, ttlMs } = this.options.idempotency;
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
    try {
      result = await invoke();
    } catch (error) {
      if (messageId !== undefined) {
        await store.release(key, token).catch((failure: Error) => this.warn(messageId, `keeps its claim until the lease ends: it cannot be released (${failure.message})`));
      }
      return this.outcome.failed(delivery, error, attempt);
    }
    if (messageId !== undefined) {
      try {
        await store.complete(key, ttlMs, replyTo && result !== undefined ? await packReply(this.options.codecs, result) : undefined);
      } catch (error) {
        this.warn(messageId, `was handled but cannot be recorded as such (${(error as Error).message}); a copy arriving after its lease would run again`);
      }
    }
    return this.outcome.succeeded(delivery, result, attempt);
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
