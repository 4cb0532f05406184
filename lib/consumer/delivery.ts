import { randomUUID } from 'node:crypto';
import type { CloudEventAttributes, MessageContext, Settlement } from '../interfaces/message-context.interface';
import { readCloudEvent } from '../codec/cloud-events';
import { own } from '../util/own-headers';
import { HEADER_ORIGINAL_EXCHANGE, HEADER_ORIGINAL_ROUTING_KEY } from '../messaging.constants';
import type { AckBatcher } from './ack-batcher';
import type { SettleOutcome } from '../telemetry/telemetry.interface';
import type { Message } from '../transport/transport.interface';
import { type Counters, FRESH } from './retry-counters';

/** One message being handled; it is settled through the acks of the channel it came from. */
export class Delivery {
  /** Shutdown gave up on it: the message goes back to the queue, so nothing may settle it. */
  abandoned = false;
  acked = false;
  /** The handler settled it itself (see MessageContext.ack & co.): the outcome being recorded. */
  settled?: Promise<void>;
  /** Its handler returned or threw (or never ran): too late for the handler to settle it. */
  ended = false;
  /** An outcome that needs a copy or a reply confirmed, being recorded (see MessageOutcome.putBack). */
  recording?: Promise<void>;
  /** While its outcome is being recorded: what to do if its channel goes meanwhile (AckBatcher calls it). */
  release?: () => void;
  /** Its tries and returns so far, as read from its headers. */
  counters: Counters = FRESH;
  private madeUpId?: string;
  /** How it ends, for metrics: set by the outcome that copies or returns it; acked otherwise. */
  outcome: SettleOutcome = 'acked';
  private controller?: AbortController;

  constructor(
    readonly msg: Message,
    private readonly acks: AckBatcher,
  ) {}

  /**
   * Its message id: the producer's, or, for a message sent without one, an id made once for this
   * delivery. Every retry and dead-letter copy carries it, so from the first copy on the message
   * has an id that survives redelivery (the made-up one does not: a redelivery makes another).
   */
  get id(): string {
    return this.msg.properties.messageId ?? (this.madeUpId ??= randomUUID());
  }

  /** Its channel is gone: nothing can settle it any more, the broker has put it back in its queue. */
  get channelGone(): boolean {
    return this.acks.closed.aborted;
  }

  /** Waits `ms` before its outcome is tried again, or less: shutdown gives up on it, or its channel goes. */
  hold(ms: number): Promise<void> {
    return pause(ms, AbortSignal.any([this.signal, this.acks.closed]));
  }

  /** The handler's abort signal, created on first use (an AbortController per message is not free). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abandoned) this.controller.abort();
    }
    return this.controller.signal;
  }

  /** Once only: an outcome that ends after shutdown put the message back must not ack its tag twice. */
  ack(): void {
    if (!this.acked) this.acks.ack(this);
  }

  /** Back to the queue (a handler's `nack({ requeue: true })`, or its channel gone while its outcome was recorded). Nothing acks it after. */
  requeue(): void {
    this.acks.requeue(this);
    this.acked = true;
    this.outcome = 'requeued';
  }

  /** Dropped: the handler said so (`nack({ requeue: false })`). */
  discard(): void {
    this.acks.discard(this);
    this.acked = true;
  }

  abandon(reason: Error): void {
    this.abandoned = true;
    this.controller?.abort(reason);
  }
}

/** What the handler sees of a delivery (and, for request-scoped providers, the request). */
export class DeliveryContext implements MessageContext {
  readonly exchange: string;
  readonly routingKey: string;
  readonly messageId: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly redelivered: boolean;
  readonly raw: MessageContext['raw'];
  // True private fields: not enumerable, so logging or serializing the context stays safe.
  readonly #delivery: Delivery;
  readonly #settle: SettleDelivery;
  readonly #structuredEvent?: CloudEventAttributes;

  constructor(
    readonly queue: string,
    delivery: Delivery,
    readonly headers: Readonly<Record<string, unknown>>,
    readonly attempt: number,
    settle: SettleDelivery,
    /** The Nest pattern of a `nest-rmq` message (see MessageContext.pattern). */
    readonly pattern?: string,
    /** A structured-mode CloudEvent's attributes (a binary-mode one's are read from the headers). */
    structuredEvent?: CloudEventAttributes,
  ) {
    this.#delivery = delivery;
    this.#structuredEvent = structuredEvent;
    this.#settle = settle;
    const { fields, properties } = delivery.msg;
    ({ exchange: this.exchange, routingKey: this.routingKey } = originOf(delivery.msg));
    this.messageId = delivery.id;
    this.correlationId = properties.correlationId;
    this.replyTo = properties.replyTo;
    this.redelivered = fields.redelivered;
    this.raw = delivery.msg;
  }

  get signal(): AbortSignal {
    return this.#delivery.signal;
  }

  /** Read when asked for: most messages are no CloudEvent, and most handlers never ask. */
  get cloudEvent(): CloudEventAttributes | undefined {
    return this.#structuredEvent ?? readCloudEvent(this.headers);
  }

  ack(): Promise<void> {
    return this.#settle(this.#delivery, { kind: 'ack' }, this.attempt);
  }

  nack(options: { requeue?: boolean } = {}): Promise<void> {
    return this.#settle(this.#delivery, { kind: 'nack', requeue: options.requeue ?? true }, this.attempt);
  }

  retry(options: { delayMs?: number } = {}): Promise<void> {
    return this.#settle(this.#delivery, { kind: 'retry', delayMs: options.delayMs }, this.attempt);
  }

  deadLetter(reason?: string): Promise<void> {
    return this.#settle(this.#delivery, { kind: 'deadLetter', reason }, this.attempt);
  }
}

/** Records how a handler settled its message itself (MessageOutcome.settle). */
export type SettleDelivery = (delivery: Delivery, settlement: Settlement, attempt: number) => Promise<void>;

export interface DeliveryOrigin {
  exchange: string;
  routingKey: string;
}

/**
 * The exchange and routing key a message was first published with. Retry, redelivery and
 * dead-letter copies go through the default exchange to a queue by name, so they carry the
 * original pair in headers; those are read only for what came through the default exchange. A
 * producer publishing to the default exchange can write those headers too: the origin is what
 * the message says, not proof of where it came from (RELIABILITY.md 64; see QueueRoutes).
 */
export function originOf(msg: Message): DeliveryOrigin {
  const { exchange, routingKey } = msg.fields;
  if (exchange !== '') return { exchange, routingKey };
  const headers = msg.properties.headers ?? {};
  const original = { exchange: own(headers, HEADER_ORIGINAL_EXCHANGE), routingKey: own(headers, HEADER_ORIGINAL_ROUTING_KEY) };
  return typeof original.exchange === 'string' && typeof original.routingKey === 'string'
    ? (original as DeliveryOrigin)
    : { exchange, routingKey };
}

/**
 * Message ids of deliveries this consumer gave back to the broker itself, through no fault of the
 * message (its channel went while its outcome was recorded, or took its ack down with it). The broker
 * marks them redelivered like those of a consumer that died; when one comes back it is excused
 * once instead of counting toward maxRedeliveries. Bounded: past `limit` the oldest are forgotten
 * (and would count, as before). Messages without an id cannot be recognised and always count.
 */
export class ReturnedDeliveries {
  private readonly ids = new Set<string>();

  constructor(private readonly limit = 10_000) {}

  add(msg: Message): void {
    const id = msg.properties.messageId;
    if (id === undefined) return;
    this.ids.delete(id);
    this.ids.add(id);
    if (this.ids.size > this.limit) this.ids.delete(this.ids.values().next().value!);
  }

  /** Whether the message was given back by us; forgets it (one return excuses one redelivery). */
  take(msg: Message): boolean {
    const id = msg.properties.messageId;
    return id !== undefined && this.ids.delete(id);
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // An aborted signal fires no more 'abort' events.
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}
