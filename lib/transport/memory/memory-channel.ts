import { EventEmitter } from 'node:events';
import { DIRECT_REPLY_TO } from '../../messaging.constants';
import { ChannelClosedError } from '../transport.errors';
import type {
  ConfirmOutcome,
  DeleteQueueOptions,
  ExchangeKind,
  ExchangeOptions,
  Message,
  PublishProperties,
  QueueInfo,
  QueueOptions,
  TransportChannel,
} from '../transport.interface';
import type { MemoryBroker } from './memory-broker';
import type { MemoryConnection } from './memory-connection';
import { ChannelConsumer, type ConsumerChannel } from './memory-consumer';
import { delivered, type Envelope, publishedProperties, type QueuedMessage } from './memory-message';
import type { MemoryQueue } from './memory-queue';
import { generatedName } from './generated-names';
import { accessRefused, channelGone, preconditionFailed, resourceName } from './refusals';

interface Unacked {
  queue: MemoryQueue;
  message: QueuedMessage;
  /** Absent for a basic.get. */
  consumer?: ChannelConsumer;
}

/** `failing`: the broker refused something asynchronously (a publish, an ack); the close follows in a later tick. */
type ChannelState = 'open' | 'failing' | 'closed';

/** The reply amqplib emits for an unroutable mandatory publish. */
const NO_ROUTE = { replyCode: 312, replyText: 'NO_ROUTE' };

/**
 * A channel on the memory broker: operations run at once, in call order, as the broker would
 * process a channel's frames; their answers, deliveries, confirms and returns come in later ticks.
 */
export class MemoryChannel extends EventEmitter implements TransportChannel, ConsumerChannel {
  private state: ChannelState = 'open';
  private nextDeliveryTag = 1;
  /** In delivery-tag order (a Map keeps insertion order). */
  private readonly unacked = new Map<number, Unacked>();
  private readonly consumers = new Map<string, ChannelConsumer>();
  private nextPublishSeq = 1;
  private readonly confirmsPending = new Map<number, (outcome: ConfirmOutcome) => void>();
  private prefetchCount = 0;
  private replyQueue?: MemoryQueue;

  constructor(
    private readonly connection: MemoryConnection,
    private readonly broker: MemoryBroker,
    private readonly confirms: boolean,
  ) {
    super();
  }

  get unackedCount(): number {
    return this.unacked.size;
  }

  get pendingConfirmCount(): number {
    return this.confirmsPending.size;
  }

  publish<T>(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: PublishProperties,
    onConfirm?: (token: T, outcome: ConfirmOutcome) => void,
    token?: T,
  ): boolean {
    if (this.state === 'closed') throw channelGone();
    // Encoded (and copied: the caller may reuse its buffer) before anything counts as written.
    const envelope: Envelope = { content: Buffer.from(content), properties: publishedProperties(properties), exchange, routingKey };
    const seq = this.confirms && onConfirm ? this.nextPublishSeq++ : undefined;
    if (seq !== undefined) this.confirmsPending.set(seq, (outcome) => onConfirm!(token as T, outcome));
    // The broker ignores what follows a channel error; the close answers the confirm.
    if (this.state === 'failing') return true;
    let outcome;
    try {
      outcome = this.broker.publish(this.withReplyQueue(envelope));
    } catch (error) {
      if (!(error instanceof ChannelClosedError)) throw error;
      this.fail(error);
      return true;
    }
    if (properties.mandatory && outcome.queues.length === 0) {
      const returned = delivered(envelope, { deliveryTag: 0, redelivered: false, consumerTag: '' });
      this.later(() => this.emit('return', { ...returned, fields: { ...returned.fields, ...NO_ROUTE } }));
    }
    if (seq !== undefined) {
      const answer = outcome.refused ? 'nack' : 'ack';
      this.later(() => this.answerConfirm(seq, answer));
    }
    return true;
  }

  assertExchange(name: string, kind: ExchangeKind, options?: ExchangeOptions): Promise<void> {
    return this.op(() => this.broker.declareExchange(name, kind, options));
  }

  assertQueue(name: string, options?: QueueOptions): Promise<QueueInfo> {
    return this.op(() => this.broker.declareQueue(this.connection, name, options));
  }

  bindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void> {
    return this.op(() => this.broker.bindQueue(this.connection, queue, exchange, routingKey, args));
  }

  unbindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void> {
    return this.op(() => this.broker.unbindQueue(this.connection, queue, exchange, routingKey, args));
  }

  checkQueue(name: string): Promise<QueueInfo> {
    return this.op(() => this.broker.checkQueue(this.connection, name));
  }

  checkExchange(name: string): Promise<void> {
    return this.op(() => this.broker.checkExchange(name));
  }

  deleteQueue(name: string, options?: DeleteQueueOptions): Promise<{ messageCount: number }> {
    return this.op(() => this.broker.deleteQueue(this.connection, name, options));
  }

  deleteExchange(name: string): Promise<void> {
    return this.op(() => this.broker.deleteExchange(name));
  }

  purgeQueue(name: string): Promise<{ messageCount: number }> {
    return this.op(() => this.broker.purgeQueue(this.connection, name));
  }

  prefetch(count: number): Promise<void> {
    return this.op(() => {
      this.prefetchCount = count;
    });
  }

  consume(
    queue: string,
    onMessage: (message: Message | null) => void,
    options: { noAck?: boolean; exclusive?: boolean; consumerTag?: string } = {},
  ): Promise<{ consumerTag: string }> {
    return this.op(() => {
      const noAck = options.noAck ?? false;
      const exclusive = options.exclusive ?? false;
      const source = queue === DIRECT_REPLY_TO ? this.openReplyQueue(noAck) : this.broker.queueForUse(this.connection, queue);
      if (exclusive ? source.consumers.length > 0 : source.consumers.some((c) => c.exclusive)) {
        throw accessRefused(`${resourceName('queue', source.name)} in exclusive use`);
      }
      const consumer = new ChannelConsumer(
        options.consumerTag || generatedName('amq.ctag-'),
        source,
        noAck,
        exclusive,
        this.prefetchCount,
        onMessage,
        this,
      );
      this.consumers.set(consumer.tag, consumer);
      source.addConsumer(consumer);
      return { consumerTag: consumer.tag };
    });
  }

  cancel(consumerTag: string): Promise<void> {
    return this.op(() => {
      const consumer = this.consumers.get(consumerTag);
      if (consumer) this.dropConsumer(consumer);
    });
  }

  get(queue: string, options: { noAck?: boolean } = {}): Promise<Message | false> {
    return this.op(() => {
      const source = this.broker.queueForUse(this.connection, queue);
      const message = source.take(Date.now());
      if (!message) return false;
      const deliveryTag = this.nextDeliveryTag++;
      if (!options.noAck) this.unacked.set(deliveryTag, { queue: source, message });
      const fields = { deliveryTag, redelivered: message.redelivered, consumerTag: '', messageCount: source.readyCount() };
      return delivered(message.envelope, fields, source.deliveryHeaders(message));
    });
  }

  ack(message: Message, allUpTo = false): void {
    this.settle(message, allUpTo, () => undefined);
  }

  nack(message: Message, allUpTo = false, requeue = true): void {
    this.settle(message, allUpTo, (settled) => {
      if (requeue) return requeueAll(settled);
      for (const { queue, message: m } of settled) queue.reject(m);
    });
  }

  close(): Promise<void> {
    return this.op(() => this.teardown());
  }

  // ---- the broker's side ----

  deliver(consumer: ChannelConsumer, queue: MemoryQueue, message: QueuedMessage): void {
    const deliveryTag = this.nextDeliveryTag++;
    if (!consumer.noAck) {
      this.unacked.set(deliveryTag, { queue, message, consumer });
      consumer.unacked++;
    }
    const fields = { consumerTag: consumer.tag, deliveryTag, redelivered: message.redelivered };
    this.callConsumer(consumer, delivered(message.envelope, fields, queue.deliveryHeaders(message)));
  }

  cancelledByBroker(consumer: ChannelConsumer): void {
    this.forgetConsumer(consumer);
    this.later(() => this.callConsumer(consumer, null));
  }

  /**
   * Gone: consumers cancelled, unacked messages back at the head of their queues, unanswered
   * confirms answered `closed` — all before `close` is emitted (with the broker's reason, if any).
   */
  teardown(error?: ChannelClosedError): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const consumer of [...this.consumers.values()]) this.dropConsumer(consumer);
    const unacked = [...this.unacked.values()];
    this.unacked.clear();
    requeueAll(unacked);
    const pending = [...this.confirmsPending.values()];
    this.confirmsPending.clear();
    for (const answer of pending) answer('closed');
    this.connection.channelClosed(this);
    this.emit('close', error);
  }

  private op<T>(work: () => T): Promise<T> {
    if (this.state !== 'open') return Promise.reject(channelGone());
    try {
      return Promise.resolve(work());
    } catch (error) {
      if (error instanceof ChannelClosedError) this.teardown(error);
      return Promise.reject(error);
    }
  }

  private settle(message: Message, allUpTo: boolean, then: (settled: Unacked[]) => void): void {
    if (this.state === 'closed') throw channelGone();
    if (this.state === 'failing') return;
    const tag = message.fields.deliveryTag;
    const settled = this.takeUnacked(tag, allUpTo);
    if (!settled) return this.fail(preconditionFailed(`unknown delivery tag ${tag}`));
    for (const { consumer, queue } of settled) {
      if (!consumer) continue;
      consumer.unacked--;
      if (!queue.deleted) this.broker.scheduleDispatch(queue);
    }
    then(settled);
  }

  /** RabbitMQ's rule: the tag must be outstanding; `allUpTo` takes every one up to it (tag 0: all). */
  private takeUnacked(tag: number, allUpTo: boolean): Unacked[] | undefined {
    if (!(allUpTo && tag === 0) && !this.unacked.has(tag)) return undefined;
    const settled: Unacked[] = [];
    for (const [t, entry] of this.unacked) {
      if (t === tag || (allUpTo && (tag === 0 || t <= tag))) {
        settled.push(entry);
        this.unacked.delete(t);
      }
    }
    return settled;
  }

  private withReplyQueue(envelope: Envelope): Envelope {
    if (envelope.properties.replyTo !== DIRECT_REPLY_TO) return envelope;
    if (!this.replyQueue) throw preconditionFailed('fast reply consumer does not exist');
    return { ...envelope, properties: { ...envelope.properties, replyTo: this.replyQueue.name } };
  }

  private openReplyQueue(noAck: boolean): MemoryQueue {
    if (!noAck) throw preconditionFailed('reply consumer cannot acknowledge');
    if (this.replyQueue) throw preconditionFailed('reply consumer already set');
    this.replyQueue = this.broker.openReplyQueue();
    return this.replyQueue;
  }

  private dropConsumer(consumer: ChannelConsumer): void {
    this.forgetConsumer(consumer);
    consumer.queue.removeConsumer(consumer);
  }

  private forgetConsumer(consumer: ChannelConsumer): void {
    this.consumers.delete(consumer.tag);
    if (consumer.queue === this.replyQueue) this.replyQueue = undefined;
  }

  private callConsumer(consumer: ChannelConsumer, message: Message | null): void {
    try {
      consumer.onMessage(message);
    } catch (error) {
      this.connection.reportError(error);
    }
  }

  /** The broker refused something that has no reply of its own: the channel closes in a later tick. */
  private fail(error: ChannelClosedError): void {
    if (this.state !== 'open') return;
    this.state = 'failing';
    this.broker.defer(() => this.teardown(error));
  }

  private answerConfirm(seq: number, outcome: ConfirmOutcome): void {
    const answer = this.confirmsPending.get(seq);
    if (!answer) return;
    this.confirmsPending.delete(seq);
    answer(outcome);
  }

  private later(task: () => void): void {
    this.broker.defer(() => {
      if (this.state !== 'closed') task();
    });
  }
}

/** Back to their queues' heads, each queue's in delivery order. */
function requeueAll(entries: Unacked[]): void {
  const byQueue = new Map<MemoryQueue, QueuedMessage[]>();
  for (const { queue, message } of entries) {
    const list = byQueue.get(queue) ?? [];
    list.push(message);
    byQueue.set(queue, list);
  }
  for (const [queue, messages] of byQueue) queue.requeue(messages);
}
