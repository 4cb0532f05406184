import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import type { Delivery } from './delivery';
import type { HandlerDefinition } from '../topology/handler-definition';
import type { MessageOutcome } from './message-outcome';
import type { DeliveryStep } from './delivery-step';
import type { ResolvedIdempotency, ResolvedMessagingOptions } from '../messaging.options';
import type { CodecRegistry } from '../codec/codec-registry';
import type { Telemetry } from '../telemetry/telemetry.interface';
import { ClaimRenewal } from '../idempotency/claim-renewal';
import type { IdempotencyClaim, IdempotencyStore } from '../interfaces/idempotency-store.interface';
import { withinDeadline } from '../idempotency/store-deadline';
import { packReply, unpackReply } from '../idempotency/stored-reply';

/** Waits between looks at a key another instance holds: from 25 ms, doubling, at most 1 s. */
const BUSY_FIRST_WAIT_MS = 25;
const BUSY_MAX_WAIT_MS = 1_000;

/** How a handler run ended. */
type Ran = { result: unknown; failure?: undefined } | { failure: { error: unknown } };

/**
 * Runs the deliveries of an `idempotent: true` handler: at most one run per message id (per
 * queue) succeeds within the TTL. A step before SettleByResult (delivery-step.ts), around the
 * handler's call:
 * - a message already handled is settled as a success without running the handler (a request
 *   gets the stored reply through the usual reply path);
 * - a message another instance is running now waits until that run ends: done, it is settled as
 *   above; failed (the claim is released), it runs here;
 * - otherwise the handler runs under a claim that expires after `leaseMs` (so a crashed instance
 *   blocks nobody for longer) and is renewed while the handler runs; success is recorded before
 *   the ack, so a crash in between makes the redelivery a duplicate, not a second run; a failure
 *   releases the claim, so the retry runs;
 * - a store that fails or does not answer within `storeTimeoutMs` cannot tell a duplicate: not
 *   the message's fault, so it goes back to its queue uncounted, after a back-off;
 * - a delivery shutdown gave up on while its claim was pending never starts its handler.
 * A message without a message id cannot be recognised and always runs.
 */
export class IdempotencyGuard implements DeliveryStep {
  private readonly renewal: ClaimRenewal;
  /** Store failures in a row; sets how long the next requeue waits. */
  private failuresInRow = 0;

  constructor(
    private readonly definition: HandlerDefinition,
    /** Settles what the handler's call (or a stored reply) gives. */
    private readonly next: DeliveryStep,
    /** Sends a message back when the store is unreachable (see storeUnreachable). */
    private readonly outcome: MessageOutcome,
    private readonly options: ResolvedIdempotency,
    /** The back-off of requeues while the store is unreachable: the module's reconnect delays. */
    private readonly backoff: ResolvedMessagingOptions['reconnect'],
    private readonly store: IdempotencyStore,
    private readonly codecs: CodecRegistry,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
  ) {
    const { leaseMs, storeTimeoutMs } = options;
    this.renewal = new ClaimRenewal(store, leaseMs, storeTimeoutMs, (messageId, text) => {
      telemetry.incident('idempotencyLeaseWarning', definition.queue);
      this.warn(messageId, text);
    });
  }

  async run(delivery: Delivery, attempt: number, call: () => unknown): Promise<void> {
    const { messageId, replyTo } = delivery.msg.properties;
    if (messageId === undefined) return this.next.run(delivery, attempt, call);
    const key = `${this.definition.queue}:${messageId}`;
    const token = randomUUID();
    let claim: IdempotencyClaim | undefined;
    try {
      claim = await this.claim(key, token, delivery.signal);
    } catch (error) {
      return this.storeUnreachable(delivery, messageId, error as Error);
    }
    this.failuresInRow = 0;
    // Shutdown gave up on it while the claim was pending: it goes back to its queue (close() puts
    // it there), and its handler must not start now.
    if (claim === undefined || delivery.abandoned) {
      if (claim?.state === 'claimed') await this.release(key, token, messageId);
      return;
    }
    if (claim.state === 'done') {
      // Settled as a success without running; a request gets the stored reply.
      const { reply } = claim;
      return this.next.run(delivery, attempt, () => (reply && replyTo ? unpackReply(this.codecs, reply) : undefined));
    }
    const stopRenewing = this.renewal.keep(key, token, messageId, delivery.signal);
    return this.next.run(delivery, attempt, async () => {
      const ran = await run(call);
      // From here the result decides: a settlement from a timer while the store is written would
      // be recorded as done and its retry dropped as a duplicate.
      delivery.ended = true;
      stopRenewing();
      // A handler that settled its message itself (context.retry() & co.) may have asked for
      // another try: only a plain success is recorded as done.
      if (ran.failure || delivery.settled) await this.release(key, token, messageId);
      else await this.complete(key, token, messageId, replyTo ? ran.result : undefined);
      if (ran.failure) throw ran.failure.error;
      return ran.result;
    });
  }

  /**
   * The store cannot say whether this is a duplicate, and that is not the message's fault: it goes
   * back to its queue as it came, no try and no redelivery counted (see MessageOutcome.sendBack),
   * after a back-off that grows while the store stays unreachable. If shutdown gives up on it
   * meanwhile, close() puts it back instead.
   */
  private async storeUnreachable(delivery: Delivery, messageId: string, error: Error): Promise<void> {
    const { initialDelayMs, maxDelayMs } = this.backoff;
    const delay = backoffDelay(this.failuresInRow++, initialDelayMs, maxDelayMs);
    this.telemetry.incident('idempotencyStoreFailure', this.definition.queue);
    this.warn(
      messageId,
      `cannot be checked: its idempotency store is unreachable (${error.message}); returned to its queue in ${delay} ms, not counted as a try`,
    );
    try {
      await sleep(delay, undefined, { signal: delivery.signal });
    } catch {
      return;
    }
    return this.outcome.sendBack(delivery);
  }

  private async complete(key: string, token: string, messageId: string, reply: unknown): Promise<void> {
    const { ttlMs, storeTimeoutMs } = this.options;
    const { store } = this;
    let stored: Buffer | undefined;
    try {
      stored = reply === undefined ? undefined : await packReply(this.codecs, reply);
    } catch (error) {
      // Its caller gets that error instead of the reply (see DeliveryReplies): a copy of the
      // request runs again rather than waiting out the lease for a reply that was never stored.
      this.warn(messageId, `was handled but its reply cannot be stored (${(error as Error).message}); a copy of it runs again`);
      return this.release(key, token, messageId);
    }
    try {
      await withinDeadline(store.complete(key, ttlMs, stored), storeTimeoutMs, 'a record of success');
    } catch (error) {
      this.warn(
        messageId,
        `was handled but cannot be recorded as such (${(error as Error).message}); a copy arriving after its lease would run again`,
      );
    }
  }

  private async release(key: string, token: string, messageId: string): Promise<void> {
    const { storeTimeoutMs } = this.options;
    const { store } = this;
    try {
      await withinDeadline(store.release(key, token), storeTimeoutMs, 'a release');
    } catch (error) {
      this.warn(messageId, `keeps its claim until the lease ends: it cannot be released (${(error as Error).message})`);
    }
  }

  /** Claims the key, waiting while another run holds it; undefined if shutdown gives up on the delivery first. */
  private async claim(key: string, token: string, signal: AbortSignal): Promise<IdempotencyClaim | undefined> {
    const { leaseMs, storeTimeoutMs } = this.options;
    const { store } = this;
    // A claim that answers after its deadline (or after shutdown) is nobody's: let it go at once
    // rather than have the message wait out the lease.
    const orphan = (late: IdempotencyClaim) => void (late.state === 'claimed' && store.release(key, token).catch(() => undefined));
    for (let looks = 0; ; looks++) {
      const claim = await withinDeadline(store.claim(key, token, leaseMs), storeTimeoutMs, 'a claim', signal, orphan);
      if (claim?.state !== 'busy') return claim;
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

async function run(invoke: () => unknown): Promise<Ran> {
  try {
    return { result: await invoke() };
  } catch (error) {
    return { failure: { error } };
  }
}
