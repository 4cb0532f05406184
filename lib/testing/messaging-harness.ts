import { CodecRegistry } from '../codec/codec-registry';
import { Inject, Injectable } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import { HandlerConsumers } from '../nest/handler-consumers';
import { deadLetterQueueName, retryQueueNames } from '../topology/handler-definition';
import { MESSAGING_OPTIONS, RPC_PUBLISHER } from '../messaging.constants';
import { MessagingError } from '../messaging.errors';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { type MemoryBroker, memoryBrokerFor, type PublishRecord } from '../transport/memory/memory.transport';
import { isMemoryUrl } from '../util/url';
import type { MessageProperties } from '../transport/transport.interface';

/** A message some app of this process published (or the module sent: retry and dead-letter copies, replies). */
export interface PublishedMessage {
  exchange: string;
  routingKey: string;
  /** Decoded by the module's codecs; the raw body when it cannot be decoded. */
  payload: unknown;
  headers: Record<string, unknown>;
  messageId?: string;
}

export interface DeadLetteredMessage {
  payload: unknown;
  headers: Record<string, unknown>;
}

/** How long `idle()` waits by default. */
const IDLE_TIMEOUT_MS = 10_000;

/**
 * For tests: waits until the app has nothing left to do, and (on `memory://`) shows what was
 * published and dead-lettered. Injectable with any `uri`; on RabbitMQ `idle()` waits for the
 * app's own queues (retry queues included) to be empty, and the inspection methods are refused.
 */
@Injectable()
export class MessagingHarness {
  private readonly broker?: MemoryBroker;

  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly consumers: HandlerConsumers,
    private readonly publisher: Publisher,
    @Inject(RPC_PUBLISHER) private readonly requests: Publisher,
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    private readonly codecs: CodecRegistry,
  ) {
    const [url] = options.urls;
    if (isMemoryUrl(url)) this.broker = memoryBrokerFor(url);
  }

  /**
   * Resolves when no message is queued for a consumer of this process, being handled, or
   * awaiting its confirm. On `memory://` messages waiting out a retry delay (or any TTL in a
   * queue nobody consumes that dead-letters somewhere) are released at once, so tests never
   * sleep through a delay. Rejects after `timeoutMs` saying what is still busy.
   */
  async idle(timeoutMs = IDLE_TIMEOUT_MS): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    // Quiet twice in a row: a handler that just finished may publish in its next tick.
    for (let quiet = 0; quiet < 2;) {
      this.broker?.releaseDelayed();
      const busy = this.busyInApp() ?? (await this.busyInBroker());
      if (busy === undefined) {
        quiet++;
        await new Promise((resolve) => setImmediate(resolve));
        continue;
      }
      quiet = 0;
      if (Date.now() >= deadline) throw new MessagingError(`MessagingHarness.idle(): still busy after ${timeoutMs} ms (${busy})`);
      await new Promise((resolve) => setTimeout(resolve, this.broker ? 1 : 20));
    }
  }

  /** What was published, oldest first (the last 10,000), optionally only to one exchange or routed to one queue. Needs `memory://`. */
  published(filter: { exchange?: string; queue?: string } = {}): ReadonlyArray<PublishedMessage> {
    const exchange = filter.exchange === undefined ? undefined : renamed(this.options.exchanges, filter.exchange);
    const queue = filter.queue === undefined ? undefined : renamed(this.options.queues, filter.queue);
    return this.records('published')
      .filter((record) => exchange === undefined || record.exchange === exchange)
      .filter((record) => queue === undefined || reaches(record, queue))
      .map((record) => ({
        exchange: record.exchange,
        routingKey: record.routingKey,
        payload: this.payloadOf(record.content, record.properties),
        headers: { ...record.properties.headers },
        messageId: record.properties.messageId,
      }));
  }

  /** The messages moved to the dead-letter queue of a handler's queue (`<queue>.dlq`), oldest first. Needs `memory://`. */
  deadLettered(queue: string): ReadonlyArray<DeadLetteredMessage> {
    const dlq = deadLetterQueueName({ baseQueue: renamed(this.options.queues, queue) });
    return this.records('deadLettered')
      .filter((record) => record.queues.includes(dlq))
      .map((record) => ({ payload: this.payloadOf(record.content, record.properties), headers: { ...record.properties.headers } }));
  }

  private records(method: string): PublishRecord[] {
    if (!this.broker) {
      throw new MessagingError(
        `MessagingHarness.${method}() inspects the in-memory broker: it needs uri "memory://" (this app uses RabbitMQ)`,
      );
    }
    return this.broker.publishes();
  }

  private payloadOf(content: Buffer, properties: MessageProperties): unknown {
    try {
      return this.codecs.decode(content, properties.contentType, properties.contentEncoding, true);
    } catch {
      return content;
    }
  }

  /** What keeps this app busy, if anything. */
  private busyInApp(): string | undefined {
    const inFlight = this.consumers.inFlight;
    if (inFlight > 0) return `${inFlight} messages being handled`;
    const unconfirmed = this.publisher.pendingConfirms + this.requests.pendingConfirms;
    if (unconfirmed > 0) return `${unconfirmed} publishes awaiting their confirm`;
    return undefined;
  }

  private async busyInBroker(): Promise<string | undefined> {
    if (this.broker) {
      const { ready, unacked, confirms, dispatching } = this.broker.stats();
      if (ready + unacked + confirms > 0 || dispatching)
        return `broker: ${ready} ready for a consumer, ${unacked} unacked, ${confirms} unconfirmed`;
      return undefined;
    }
    return this.queuedOnRabbitMQ();
  }

  /** RabbitMQ cannot release a delayed message early: its retry queues are waited out like the rest. */
  private async queuedOnRabbitMQ(): Promise<string | undefined> {
    const queues = this.consumers.definitions.flatMap((definition) => [definition.queue, ...retryQueueNames(definition)]);
    if (queues.length === 0) return undefined;
    return this.connections.publisher.withChannel(async (channel) => {
      for (const queue of queues) {
        const { messageCount } = await channel.checkQueue(queue);
        if (messageCount > 0) return `${messageCount} messages in "${queue}"`;
      }
      return undefined;
    });
  }
}

function reaches(record: PublishRecord, queue: string): boolean {
  return record.queues.includes(queue) || (record.exchange === '' && record.routingKey === queue);
}
