import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import type { ManagedConnection } from '../connection/managed-connection';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Message, TransportChannel } from '../transport/transport.interface';
import { within } from '../util/within';
import { AckBatcher } from './ack-batcher';
import type { Delivery } from './delivery';

/** What the loop needs to know of the queue it consumes. */
export interface ConsumedQueue {
  /** The handler's name, for logs. */
  name: string;
  queue: string;
  prefetch: number;
}

/**
 * The channel one handler consumes on, and the loop that brings it back: after a lost connection, a
 * channel error or a broker-side cancel it declares (through `declare`) and consumes again, with a
 * growing back-off, until stop(). Each message goes to `deliver` with the channel's ack batcher;
 * one that arrives after stop() goes back to its queue untouched. In-flight bookkeeping is the
 * caller's (see InFlightDeliveries).
 */
export class ConsumerChannel {
  private channel?: TransportChannel;
  private acks?: AckBatcher;
  private consumerTag?: string;
  private stopped = false;
  private settingUp = false;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;
  private readonly onConnected = () => this.scheduleSetup(0);

  constructor(
    private readonly consumed: ConsumedQueue,
    private readonly connection: ManagedConnection,
    private readonly reconnect: ResolvedMessagingOptions['reconnect'],
    private readonly logger: Logger,
    /** Declares what the queue needs on the channel, before each consume (a no-op with `declare: false`). */
    private readonly declare: (channel: TransportChannel) => Promise<void>,
    /** A delivery whose ack went down with its channel: the broker sends it again, redelivered by our doing. */
    private readonly onAckLost: (delivery: Delivery) => void,
    private readonly deliver: (msg: Message, acks: AckBatcher) => void,
  ) {}

  /** Whether the broker is delivering to this consumer now (false while it resumes after a loss). */
  get isConsuming(): boolean {
    return this.consumerTag !== undefined;
  }

  /** Opens the channel and consumes; a refusal (e.g. 406) fails startup. Comes back on every reconnect. */
  async start(): Promise<void> {
    this.connection.on('connected', this.onConnected);
    await this.setup();
  }

  /**
   * Stops taking messages: basic.cancel, waited for until `deadline` at most (a stalled socket never
   * confirms it; what arrives meanwhile goes back untouched).
   */
  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    this.connection.off('connected', this.onConnected);
    clearTimeout(this.retryTimer);
    const { channel, consumerTag } = this;
    if (channel && consumerTag) {
      this.consumerTag = undefined;
      await within(
        channel.cancel(consumerTag).catch(() => undefined),
        Math.max(0, deadline - Date.now()),
      );
    }
  }

  /**
   * Closes the channel (the broker requeues whatever was not acked) by `deadline`; `beforeClose`
   * runs first, while acks still reach the broker, and pending acks are flushed after it.
   */
  async close(deadline: number, beforeClose: () => Promise<unknown>): Promise<void> {
    this.stopped = true;
    const channel = this.channel;
    this.channel = undefined;
    if (!channel) return;
    await beforeClose();
    this.acks?.flush();
    // A stalled socket never answers: the connection's close destroys it after its own bound.
    await within(
      channel.close().catch(() => undefined),
      Math.max(0, deadline - Date.now()),
    );
  }

  private async setup(): Promise<void> {
    if (this.stopped) return;
    this.settingUp = true;
    try {
      const channel = await this.connection.createChannel();
      const acks = new AckBatcher(channel, this.onAckLost);
      channel.on('close', (error?: Error) => {
        if (error)
          this.logger.warn(`Channel of ${this.consumed.name} (queue "${this.consumed.queue}") closed by RabbitMQ: ${error.message}`);
        acks.close();
        this.onChannelClosed(channel);
      });
      this.channel = channel;
      this.acks = acks;
      try {
        await this.consume(channel, acks);
      } catch (error) {
        await channel.close().catch(() => undefined);
        throw error;
      }
      this.failures = 0;
    } finally {
      this.settingUp = false;
    }
  }

  private async consume(channel: TransportChannel, acks: AckBatcher): Promise<void> {
    await this.declare(channel);
    await channel.prefetch(this.consumed.prefetch);
    const { consumerTag } = await channel.consume(this.consumed.queue, (msg) => this.onMessage(channel, acks, msg), { noAck: false });
    if (this.stopped) {
      await channel.cancel(consumerTag).catch(() => undefined);
      return;
    }
    this.consumerTag = consumerTag;
  }

  private onChannelClosed(channel: TransportChannel): void {
    if (this.channel !== channel) return;
    this.channel = undefined;
    this.acks = undefined;
    this.consumerTag = undefined;
    // A channel-level error leaves the connection up: rebuild only this channel.
    if (this.connection.current) this.scheduleSetup();
  }

  private scheduleSetup(delay = backoffDelay(this.failures, this.reconnect.initialDelayMs, this.reconnect.maxDelayMs)): void {
    if (this.stopped || this.retryTimer || this.settingUp) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.channel && this.consumerTag) return;
      const resume = this.channel && this.acks ? this.consume(this.channel, this.acks) : this.setup();
      resume.catch((error: Error) => {
        this.failures++;
        this.logger.error(`Cannot resume ${this.consumed.name}: ${error.message}`);
        if (this.connection.current) this.scheduleSetup();
      });
    }, delay);
  }

  private onMessage(channel: TransportChannel, acks: AckBatcher, msg: Message | null): void {
    if (msg === null) {
      // The broker cancelled us (the queue was deleted, or a node went away): declare and consume again.
      this.logger.warn(`RabbitMQ cancelled the consumer of ${this.consumed.name} (queue "${this.consumed.queue}" deleted?); resuming`);
      if (this.channel === channel) this.consumerTag = undefined;
      this.scheduleSetup();
      return;
    }
    if (this.stopped) {
      // In transit when we cancelled: back to the queue, untouched.
      try {
        channel.nack(msg, false, true);
      } catch {
        // Channel gone: the broker requeues it anyway.
      }
      return;
    }
    this.deliver(msg, acks);
  }
}
