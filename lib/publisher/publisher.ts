import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import type * as amqp from 'amqplib';
import type { ManagedConnection } from '../connection/managed-connection';
import { maskUrl } from '../connection/url';
import { encode } from '../codec/json.codec';
import type { ResolvedMessagingOptions } from '../messaging.options';
import {
  ConnectionLostError,
  ExchangeNotFoundError,
  MessagingError,
  PublishTimeoutError,
  ShuttingDownError,
  UnroutableError,
} from '../messaging.errors';

export type PublishProperties = amqp.Options.Publish & { messageId: string };

/** A message on its way out: a payload encoded only when it is written, or bytes as they are. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  payload?: unknown;
  content?: Buffer;
  properties: PublishProperties;
}

/** The broker's verdict on one publish: undefined once confirmed, or why it failed. */
export type Settle = (error?: Error) => void;

interface Job {
  message: Outgoing;
  deadline: number;
  settle: Settle;
}

interface Slot {
  channel: amqp.ConfirmChannel;
  closeReason?: string;
}

/** The channel went away before the broker confirmed; the job may be tried again. */
class ChannelGone extends Error {}

/**
 * Publishes with confirms on one ConfirmChannel of the publisher connection. Messages are written
 * straight to the socket while it takes them; otherwise (no connection, broker alarm, full socket
 * buffer) they wait in one FIFO that is pumped in order, with deadlines checked by one timer.
 * Publishes the broker did not confirm before the channel went away are written again.
 * Emits `channel` with every new channel (the reply router consumes direct replies there) and
 * `channel-lost` when it goes.
 */
export class Publisher extends EventEmitter {
  private slot?: Slot;
  private writable = true;
  private readonly queue: Job[] = [];
  private readonly returned = new Set<string>();
  private unconfirmed = 0;
  private idle: Array<() => void> = [];
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly connection: ManagedConnection,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
  ) {
    super();
    connection.on('connected', () => void this.openChannel());
    connection.on('unblocked', () => this.pump());
  }

  /** The open channel, if any; `channel` events announce the next ones. */
  get channel(): amqp.ConfirmChannel | undefined {
    return this.slot?.channel;
  }

  get pendingConfirms(): number {
    return this.unconfirmed + this.queue.length;
  }

  async start(): Promise<void> {
    await this.openChannel();
  }

  /** Resolves once the broker confirmed the message (or rejects with why it could not). */
  publish(message: Outgoing, timeoutMs = this.options.publishTimeoutMs): Promise<void> {
    return new Promise((resolve, reject) => this.submit(message, timeoutMs, (error) => (error ? reject(error) : resolve())));
  }

  /** Publishes and reports the broker's verdict to `settle`, for callers that do not wait on it. */
  submit(message: Outgoing, timeoutMs: number, settle: Settle): void {
    if (this.closed) return settle(new ShuttingDownError('The messaging module is shut down: nothing more can be sent'));
    const job: Job = { message, deadline: Date.now() + timeoutMs, settle };
    const slot = this.usable();
    if (slot && this.queue.length === 0) return this.write(slot, job);
    if ((!this.slot || this.connection.blockedReason) && this.queue.length >= this.options.maxBufferedPublishes) {
      return settle(new PublishTimeoutError(`${this.notReady()}, and ${this.queue.length} messages already wait (maxBufferedPublishes)`));
    }
    this.queue.push(job);
    this.sweep();
  }

  /** Resolves when every accepted message has been confirmed or has failed. */
  whenIdle(): Promise<void> {
    if (this.pendingConfirms === 0) return Promise.resolve();
    return new Promise((resolve) => this.idle.push(resolve));
  }

  /** Stops taking messages; what still waits fails; the channel closes (the connection is not ours). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    this.fail(this.queue.splice(0), () => new ShuttingDownError('The messaging module shut down before the message could be sent'));
    const slot = this.slot;
    this.slot = undefined;
    await slot?.channel.close().catch(() => undefined);
  }

  private usable(): Slot | undefined {
    return this.writable && !this.connection.blockedReason ? this.slot : undefined;
  }

  private async openChannel(): Promise<void> {
    if (this.closed) return;
    let channel: amqp.ConfirmChannel;
    try {
      channel = await this.connection.createConfirmChannel();
    } catch (error) {
      // The connection went down meanwhile; its `connected` event brings us back.
      this.logger.debug?.(`Cannot open the publish channel: ${(error as Error).message}`);
      return;
    }
    const slot: Slot = { channel };
    channel.on('error', (error: Error) => {
      slot.closeReason = error.message;
      this.logger.warn(`Publish channel closed by the broker: ${maskUrl(error.message)}`);
    });
    channel.on('return', (message: amqp.Message) => this.returned.add(message.properties.messageId));
    channel.on('drain', () => {
      this.writable = true;
      this.pump();
    });
    channel.on('close', () => {
      if (this.slot !== slot) return;
      this.slot = undefined;
      this.returned.clear();
      this.emit('channel-lost', maskUrl(slot.closeReason ?? 'connection closed'));
      // A channel-level error (e.g. 404 on a missing exchange) leaves the connection up: reopen now.
      if (this.connection.current && !this.closed) void this.openChannel();
    });
    if (this.closed) {
      await channel.close().catch(() => undefined);
      return;
    }
    this.slot = slot;
    this.writable = true;
    this.emit('channel', channel);
    this.pump();
  }

  private pump(): void {
    let slot = this.usable();
    while (slot && this.queue.length > 0) {
      this.write(slot, this.queue.shift()!);
      slot = this.usable();
    }
    this.settleIdle();
  }

  private write(slot: Slot, job: Job): void {
    const { message } = job;
    if (message.content === undefined) {
      try {
        const encoded = encode(message.payload);
        message.content = encoded.content;
        message.properties.contentType ??= encoded.contentType;
      } catch (error) {
        return job.settle(new MessagingError(`Cannot encode the message for "${message.exchange || message.routingKey}": ${(error as Error).message}`));
      }
    }
    let settled = false;
    this.unconfirmed++;
    const onConfirm = (error: Error | null) => {
      if (settled) return;
      settled = true;
      this.unconfirmed--;
      if (error) this.retryOrFail(job, slot, error);
      else if (this.returned.size > 0 && this.returned.delete(message.properties.messageId)) {
        job.settle(new UnroutableError(message.exchange, message.routingKey));
      } else job.settle();
      this.settleIdle();
    };
    try {
      if (!slot.channel.publish(message.exchange, message.routingKey, message.content, message.properties, onConfirm)) {
        this.writable = false;
      }
    } catch (error) {
      // amqplib throws when the channel is already closing; its close event has not reached us yet.
      if (this.slot === slot) this.slot = undefined;
      onConfirm(new ChannelGone((error as Error).message));
    }
  }

  private retryOrFail(job: Job, slot: Slot, error: Error): void {
    const { exchange, routingKey } = job.message;
    if (error.message === 'message nacked') {
      return job.settle(new MessagingError(`RabbitMQ refused the message for "${exchange || routingKey}" (nack)`));
    }
    const reason = slot.closeReason ?? error.message;
    if (exchange !== '' && reason.includes(`no exchange '${exchange}'`)) {
      return job.settle(new ExchangeNotFoundError(exchange, reason));
    }
    if (this.closed || Date.now() >= job.deadline) {
      return job.settle(new ConnectionLostError(`The message for "${exchange || routingKey}" was not confirmed before the channel closed: ${maskUrl(reason)}`));
    }
    // At-least-once: the broker may or may not have it, so it goes again with the same messageId.
    this.queue.unshift(job);
    this.sweep();
    this.pump();
  }

  /** Fails queued messages whose deadline passed; one timer for all of them. */
  private sweep(): void {
    if (this.sweeper || this.queue.length === 0) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      const expired: Job[] = [];
      for (let i = this.queue.length - 1; i >= 0; i--) {
        if (this.queue[i].deadline <= now) expired.push(...this.queue.splice(i, 1));
      }
      this.fail(expired, () => new PublishTimeoutError(`${this.notReady()}: gave up after waiting the publish timeout`));
      if (this.queue.length === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
      this.settleIdle();
    }, 50);
    this.sweeper.unref();
  }

  private fail(jobs: Job[], error: () => Error): void {
    for (const job of jobs) job.settle(error());
    this.settleIdle();
  }

  private notReady(): string {
    if (!this.connection.current) return `RabbitMQ is unreachable (${this.options.urls.map(maskUrl).join(', ')})`;
    if (this.connection.blockedReason) return `RabbitMQ blocks publishing (${this.connection.blockedReason})`;
    if (!this.slot) return 'The publish channel is being reopened';
    return 'The socket is not taking more data (waiting for drain)';
  }

  private settleIdle(): void {
    if (this.idle.length === 0 || this.pendingConfirms > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
