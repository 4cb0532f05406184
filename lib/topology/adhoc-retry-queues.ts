import type { ManagedConnection } from '../connection/managed-connection';
import { PublishTimeoutError } from '../messaging.errors';
import { withinOrThrow } from '../util/within';
import type { HandlerDefinition } from './handler-definition';
import { declareAdhocRetryQueue, adhocRetryQueueName, adhocRetryQueueExpiresMs } from './handler-topology';

/** How many ad-hoc retry queues one handler remembers as declared; past it the oldest is declared again on its next use. */
const REMEMBERED = 100;
/** Margin for clocks and the broker's own expiry timer. */
const SAFETY_MS = 10_000;

/**
 * Retry queues for `context.retry({ delayMs })` with a delay the policy has no queue for:
 * `<queue>.retry.<ms>ms.adhoc`, declared on first use like the policy's, but expiring when unused
 * (`x-expires`, see adhocRetryQueueExpiresMs), so a handler that picks many delays does not leave
 * a queue behind for each. RabbitMQ deletes an expiring queue with what it holds, and a publish
 * into it does not count as use; so before a copy is sent the queue is declared again (which
 * renews its expiry) unless the copy surely leaves before it can expire: sent within the publish
 * timeout, out after its delay, with a margin. Measured on the monotonic clock. What is
 * remembered is bounded too.
 */
export class AdhocRetryQueues {
  private readonly declaredAt = new Map<number, number>();

  constructor(
    private readonly definition: HandlerDefinition,
    private readonly connection: ManagedConnection,
  ) {}

  /** The queue for `delayMs`, declared now unless it surely still exists; bounded by `timeoutMs`. */
  async forDelay(delayMs: number, timeoutMs: number): Promise<string> {
    const name = adhocRetryQueueName(this.definition, delayMs);
    const at = this.declaredAt.get(delayMs);
    if (at !== undefined && performance.now() - at + timeoutMs + delayMs + SAFETY_MS < adhocRetryQueueExpiresMs(delayMs)) return name;
    const started = performance.now();
    const declaring = this.connection.withChannel((channel) => declareAdhocRetryQueue(channel, this.definition, delayMs));
    await withinOrThrow(
      declaring,
      timeoutMs,
      () => new PublishTimeoutError(`Could not declare the retry queue "${name}" within ${timeoutMs} ms`),
    );
    this.declaredAt.delete(delayMs);
    this.declaredAt.set(delayMs, started);
    if (this.declaredAt.size > REMEMBERED) this.declaredAt.delete(this.declaredAt.keys().next().value!);
    return name;
  }

  /** The queue was found missing: declared again on next use. */
  forget(delayMs: number): void {
    this.declaredAt.delete(delayMs);
  }
}
