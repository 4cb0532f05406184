import { inBrokerScope } from './broker-scope';
import type { DeathReason } from './dead-letter';
import { type Envelope, messageTtl, type QueuedMessage } from './memory-message';
import type { QueueDeclaration, QueueSettings } from './queue-arguments';

/** Who takes messages from a queue: a channel's consumer. */
export interface QueueConsumer {
  readonly tag: string;
  readonly exclusive: boolean;
  hasCredit(): boolean;
  deliver(queue: MemoryQueue, message: QueuedMessage): void;
  /** The queue went (deleted, expired, its owner gone). */
  cancelledByBroker(): void;
}

/** The longest wait a Node timer keeps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** What a queue needs from its broker. */
export interface QueueHost {
  deadLetter(queue: MemoryQueue, message: QueuedMessage, reason: DeathReason): void;
  scheduleDispatch(queue: MemoryQueue): void;
  /** The queue deletes itself: auto-delete after its last consumer, or x-expires unused. */
  retire(queue: MemoryQueue): void;
}

/**
 * A queue's messages and consumers: ready messages in order, TTL at the head (RabbitMQ expires
 * only the head; an expired message is never delivered), length limits, round-robin delivery to
 * consumers with credit, requeue at the head.
 */
export class MemoryQueue {
  private ready: QueuedMessage[] = [];
  private readyBytes = 0;
  private consumerList: QueueConsumer[] = [];
  private nextConsumer = 0;
  private hadConsumer = false;
  private ttlTimer?: NodeJS.Timeout;
  private ttlTimerAt?: number;
  private expiresTimer?: NodeJS.Timeout;
  private gone = false;

  constructor(
    readonly name: string,
    readonly declaration: QueueDeclaration,
    readonly settings: QueueSettings,
    /** The connection of an exclusive queue. */
    readonly owner: object | undefined,
    private readonly host: QueueHost,
  ) {
    this.touch();
  }

  get deleted(): boolean {
    return this.gone;
  }

  get consumers(): readonly QueueConsumer[] {
    return this.consumerList;
  }

  /** Ready messages, after expiring those due at the head. */
  readyCount(now = Date.now()): number {
    this.expireHead(now);
    return this.ready.length;
  }

  /** False when a full queue with reject-publish overflow turned it away. */
  enqueue(envelope: Envelope, now: number): boolean {
    const ttls = [this.settings.messageTtl, messageTtl(envelope.properties)].filter((t) => t !== undefined);
    const message: QueuedMessage = {
      envelope,
      redelivered: false,
      expiresAt: ttls.length > 0 ? now + Math.min(...ttls) : undefined,
      returns: 0,
    };
    if (this.settings.overflow !== 'drop-head' && this.wouldOverflow(envelope.content.length)) {
      if (this.settings.overflow === 'reject-publish-dlx') this.host.deadLetter(this, message, 'maxlen');
      return false;
    }
    this.ready.push(message);
    this.readyBytes += envelope.content.length;
    while (this.overLimit()) this.host.deadLetter(this, this.shift()!, 'maxlen');
    this.changed();
    return true;
  }

  /** Back to the head in their order, redelivered; a quorum queue drops those past its delivery limit. */
  requeue(messages: QueuedMessage[]): void {
    if (this.gone) return;
    const back: QueuedMessage[] = [];
    for (const message of messages) {
      message.redelivered = true;
      message.returns++;
      const limit = this.settings.deliveryLimit;
      if (limit !== undefined && message.returns > limit) this.host.deadLetter(this, message, 'delivery_limit');
      else back.push(message);
    }
    this.ready.unshift(...back);
    this.readyBytes += back.reduce((sum, m) => sum + m.envelope.content.length, 0);
    this.changed();
  }

  reject(message: QueuedMessage): void {
    if (!this.gone) this.host.deadLetter(this, message, 'rejected');
  }

  /** basic.get: the head, if any. */
  take(now: number): QueuedMessage | undefined {
    this.touch();
    this.expireHead(now);
    const message = this.shift();
    this.changed();
    return message;
  }

  /** Headers a delivery carries besides the message's own. */
  deliveryHeaders(message: QueuedMessage): Record<string, unknown> | undefined {
    return this.settings.type === 'quorum' ? { 'x-delivery-count': message.returns } : undefined;
  }

  /** Delivers to consumers with credit, in turn, until one or the other runs out. */
  dispatch(): void {
    this.expireHead(Date.now());
    while (!this.gone && this.ready.length > 0) {
      const consumer = this.nextWithCredit();
      if (!consumer) break;
      consumer.deliver(this, this.shift()!);
      this.expireHead(Date.now());
    }
    this.armTtlTimer();
  }

  addConsumer(consumer: QueueConsumer): void {
    this.consumerList.push(consumer);
    this.hadConsumer = true;
    clearTimeout(this.expiresTimer);
    this.host.scheduleDispatch(this);
  }

  removeConsumer(consumer: QueueConsumer): void {
    const at = this.consumerList.indexOf(consumer);
    if (at < 0) return;
    this.consumerList.splice(at, 1);
    if (at < this.nextConsumer) this.nextConsumer--;
    if (this.consumerList.length > 0) return;
    if (this.declaration.autoDelete && this.hadConsumer) this.host.retire(this);
    else this.touch();
  }

  /**
   * A declare (passive too): renews a classic queue's x-expires lease. RabbitMQ does not count it
   * as a use of a quorum queue, which expires with its messages however often it is declared.
   */
  declared(): void {
    if (this.settings.type === 'classic') this.touch();
  }

  /** A get, or the last consumer gone: an x-expires queue counts from now again. */
  touch(): void {
    const { expires } = this.settings;
    if (expires === undefined || this.consumerList.length > 0 || this.gone) return;
    this.expireAt(Date.now() + expires);
  }

  /** RabbitMQ takes an x-expires up to 2^32 - 1 ms; a Node timer over 2^31 - 1 ms would fire at once, so a longer wait re-arms. */
  private expireAt(at: number): void {
    clearTimeout(this.expiresTimer);
    const wait = at - Date.now();
    const next = () => (wait > MAX_TIMER_MS ? this.expireAt(at) : this.host.retire(this));
    this.expiresTimer = setTimeout(inBrokerScope(next), Math.min(wait, MAX_TIMER_MS)).unref();
  }

  purge(): number {
    const count = this.ready.length;
    this.ready = [];
    this.readyBytes = 0;
    this.changed();
    return count;
  }

  /**
   * Dead-letters now, as if expired, every message with a TTL — when nothing consumes this
   * queue and it has a dead-letter exchange (a delay queue). Tests need not wait out delays.
   */
  releaseDelayed(): void {
    if (this.settings.deadLetterExchange === undefined || this.consumerList.length > 0) return;
    const due = this.ready.filter((m) => m.expiresAt !== undefined);
    if (due.length === 0) return;
    this.ready = this.ready.filter((m) => m.expiresAt === undefined);
    this.readyBytes = this.ready.reduce((sum, m) => sum + m.envelope.content.length, 0);
    for (const message of due) this.host.deadLetter(this, message, 'expired');
    this.changed();
  }

  /** Gone: its messages discarded, its consumers told. Returns how many were ready. */
  delete(): number {
    this.gone = true;
    clearTimeout(this.ttlTimer);
    clearTimeout(this.expiresTimer);
    const count = this.ready.length;
    this.ready = [];
    this.readyBytes = 0;
    const consumers = this.consumerList;
    this.consumerList = [];
    for (const consumer of consumers) consumer.cancelledByBroker();
    return count;
  }

  private shift(): QueuedMessage | undefined {
    const message = this.ready.shift();
    if (message) this.readyBytes -= message.envelope.content.length;
    return message;
  }

  private wouldOverflow(bytes: number): boolean {
    const { maxLength, maxLengthBytes } = this.settings;
    return (
      (maxLength !== undefined && this.ready.length >= maxLength) ||
      (maxLengthBytes !== undefined && this.readyBytes + bytes > maxLengthBytes)
    );
  }

  private overLimit(): boolean {
    const { maxLength, maxLengthBytes } = this.settings;
    return (maxLength !== undefined && this.ready.length > maxLength) || (maxLengthBytes !== undefined && this.readyBytes > maxLengthBytes);
  }

  private expireHead(now: number): void {
    while (this.ready.length > 0 && this.ready[0].expiresAt !== undefined && this.ready[0].expiresAt <= now) {
      this.host.deadLetter(this, this.shift()!, 'expired');
    }
  }

  private nextWithCredit(): QueueConsumer | undefined {
    const count = this.consumerList.length;
    for (let i = 0; i < count; i++) {
      const at = (this.nextConsumer + i) % count;
      if (this.consumerList[at].hasCredit()) {
        this.nextConsumer = at + 1;
        return this.consumerList[at];
      }
    }
    return undefined;
  }

  private changed(): void {
    this.armTtlTimer();
    if (this.consumerList.length > 0 && this.ready.length > 0) this.host.scheduleDispatch(this);
  }

  /** One timer, for the head: messages behind it wait their turn, as in RabbitMQ. */
  private armTtlTimer(): void {
    const at = this.ready[0]?.expiresAt;
    if (at === this.ttlTimerAt || this.gone) return;
    clearTimeout(this.ttlTimer);
    this.ttlTimerAt = at;
    if (at === undefined) return;
    this.ttlTimer = setTimeout(
      inBrokerScope(() => {
        this.ttlTimerAt = undefined;
        this.expireHead(Date.now());
        this.changed();
      }),
      Math.max(0, at - Date.now()),
    ).unref();
  }
}
