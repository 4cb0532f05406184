import type { Message } from '../transport.interface';
import type { QueuedMessage } from './memory-message';
import type { MemoryQueue, QueueConsumer } from './memory-queue';

/** What a consumer needs from its channel. */
export interface ConsumerChannel {
  deliver(consumer: ChannelConsumer, queue: MemoryQueue, message: QueuedMessage): void;
  cancelledByBroker(consumer: ChannelConsumer): void;
}

/**
 * A basic.consume on one channel. Its prefetch limit is the channel's at the time it started
 * (per-consumer QoS, amqplib's default); noAck consumers take no credit.
 */
export class ChannelConsumer implements QueueConsumer {
  /** Delivered and not yet settled. */
  unacked = 0;

  constructor(
    readonly tag: string,
    readonly queue: MemoryQueue,
    readonly noAck: boolean,
    readonly exclusive: boolean,
    private readonly prefetch: number,
    readonly onMessage: (message: Message | null) => void,
    private readonly channel: ConsumerChannel,
  ) {}

  hasCredit(): boolean {
    return this.noAck || this.prefetch === 0 || this.unacked < this.prefetch;
  }

  deliver(queue: MemoryQueue, message: QueuedMessage): void {
    this.channel.deliver(this, queue, message);
  }

  cancelledByBroker(): void {
    this.channel.cancelledByBroker(this);
  }
}
