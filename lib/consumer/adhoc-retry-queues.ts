import type { ManagedConnection } from '../connection/managed-connection';
import { PublishTimeoutError } from '../messaging.errors';
import { within } from '../util/within';
import type { HandlerDefinition } from './handler-definition';
import { declareAdhocRetryQueue, adhocRetryQueueName, adhocRetryQueueExpiresMs } from './handler.topology';

/** How many ad-hoc retry queues one handler remembers as declared; past it the oldest is declared again on its next use. */
const REMEMBERED = 100;

/**
 * Retry queues for `context.retry({ delayMs })` with a delay the policy has no queue for:
 * `<queue>.retry.<ms>ms.adhoc`, declared on first use like the policy's, but expiring when unused
 * (`x-expires`, see adhocRetryQueueExpiresMs), so a handler that picks many delays does not leave
 * a queue behind for each. A queue is declared again (which renews its expiry) before a copy is
 * sent once half its expiry has passed since the last declaration: a copy in it always leaves
 * before the queue can expire. What is remembered is bounded too.
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
    if (at !== undefined && Date.now() - at < adhocRetryQueueExpiresMs(delayMs) / 2) return name;
    const started = Date.now();
    const declaring = this.connection.withChannel((channel) => declareAdhocRetryQueue(channel, this.definition, delayMs));
    const declared = await within(declaring.then(() => true), timeoutMs);
    if (!declared) {
      declaring.catch(() => undefined);
      throw new PublishTimeoutError(`Could not declare the retry queue "${name}" within ${timeoutMs} ms`);
    }
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
