import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import type * as amqp from 'amqplib';
import type { ManagedConnection } from '../connection/managed-connection';
import { maskUrl } from '../connection/url';
import { encode } from '../codec/json.codec';
import type { ResolvedMessagingOptions } from '../messaging.options';
import {
  ConnectionLostError,
  EncodeError,
  ExchangeNotFoundError,
  MessagingError,
  PublishTimeoutError,
  ShuttingDownError,
  UnroutableError,
} from '../messaging.errors';
import { JobQueue } from './job-queue';
import { writeMessage } from './wire';

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

/** One channel and what belongs to it alone. */
interface Slot {
  channel: amqp.Channel;
  /** Message ids the broker returned unroutable; their confirm follows. */
  returned: Set<string>;
  closeReason?: string;
  /** Known to be closing: nothing more is written to it. */
  dead: boolean;
  closed: boolean;
}

/**
 * Publishes on one channel of the publisher connection, with confirms unless told otherwise.
 * Messages are written straight to the socket while it takes them and fewer than
 * `maxInFlightPublishes` wait for their confirm; otherwise (no connection, broker alarm, full
 * socket, full window) they wait unencoded in one FIFO that is pumped in order. One timer fails
 * what passes its deadline, written or not. Publishes the broker did not confirm before the
 * channel went away are written again.
 * Emits `channel` with every new channel, `channel-lost` when one goes, and, without confirms,
 * `return` with each message the broker returned unroutable.
 */
export class Publisher extends EventEmitter {
  private slot?: Slot;
  private writable = true;
  private readonly queue = new JobQueue<Job>();
  private readonly unconfirmed = new Set<Job>();
  private idle: Array<() => void> = [];
  private sweeper?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly connection: ManagedConnection,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
    /** Names this publisher's channel in logs. */
    private readonly role: string,
    /**
     * Without confirms a publish is settled once written. That is for messages whose answer is
     * the proof of delivery (requests, direct replies): the broker's ack would only add a frame
     * each way to every round trip.
     */
    private readonly confirms = true,
  ) {
    super();
    connection.on('connected', () => void this.openChannel());
    connection.on('unblocked', () => this.pump());
  }

  /** The open channel, if any; `channel` events announce the next ones. */
  get channel(): amqp.Channel | undefined {
    return this.slot?.channel;
  }

  get pendingConfirms(): number {
    return this.unconfirmed.size + this.queue.length;
  }

  async start(): Promise<void> {
    await this.openChannel();
  }

  /** Resolves with the message id once the broker confirmed it (or rejects with why it could not). */
  publish(message: Outgoing, timeoutMs = this.options.publishTimeoutMs): Promise<string> {
    const id = message.properties.messageId;
    return new Promise((resolve, reject) => this.submit(message, timeoutMs, (error) => (error ? reject(error) : resolve(id))));
  }

  /** Publishes and reports the broker's verdict to `settle`, for callers that do not wait on it. */
  submit(message: Outgoing, timeoutMs: number, settle: Settle): void {
    if (this.closed) return settle(new ShuttingDownError('The messaging module is shut down: nothing more can be sent'));
    const job: Job = { message, deadline: Date.now() + timeoutMs, settle };
    const slot = this.queue.length === 0 ? this.usable() : undefined;
    if (slot) return this.write(slot, job);
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
    for (const job of this.queue.clear()) job.settle(new ShuttingDownError('The messaging module shut down before the message could be sent'));
    const slot = this.slot;
    this.slot = undefined;
    await slot?.channel.close().catch(() => undefined);
    this.settleIdle();
  }

  private usable(): Slot | undefined {
    if (!this.writable || this.connection.blockedReason || this.unconfirmed.size >= this.options.maxInFlightPublishes) return undefined;
    return this.slot;
  }

  private async openChannel(): Promise<void> {
    if (this.closed) return;
    let channel: amqp.Channel;
    try {
      channel = this.confirms ? await this.connection.createConfirmChannel() : await this.connection.createChannel();
    } catch (error) {
      // The connection went down meanwhile; its `connected` event brings us back.
      this.logger.debug?.(`Cannot open the ${this.role} channel: ${(error as Error).message}`);
      return;
    }
    const slot: Slot = { channel, returned: new Set(), dead: false, closed: false };
    channel.on('error', (error: Error) => {
      slot.closeReason = error.message;
      this.logger.warn(`The ${this.role} channel was closed by RabbitMQ: ${maskUrl(error.message)}`);
    });
    channel.on('return', (message: amqp.Message) => {
      if (this.confirms) slot.returned.add(message.properties.messageId);
      else this.emit('return', message);
    });
    channel.on('drain', () => {
      if (this.slot !== slot) return;
      this.writable = true;
      this.pump();
    });
    // amqplib fails this channel's pending confirms before this listener runs; `dead` already
    // stopped writes to it, and this is where it is replaced.
    channel.on('close', () => this.onClosed(slot));
    if (this.closed) {
      await channel.close().catch(() => undefined);
      return;
    }
    this.slot = slot;
    this.writable = true;
    this.emit('channel', channel);
    this.pump();
  }

  private onClosed(slot: Slot): void {
    if (slot.closed) return;
    slot.closed = true;
    this.retire(slot);
    this.emit('channel-lost', maskUrl(slot.closeReason ?? 'connection closed'));
    // A channel-level error (e.g. 404 on a missing exchange) leaves the connection up: reopen now.
    if (this.connection.current && !this.closed) void this.openChannel();
  }

  /** Stops writing to a channel that is going away. */
  private retire(slot: Slot): void {
    slot.dead = true;
    if (this.slot === slot) this.slot = undefined;
  }

  private pump(): void {
    let slot = this.queue.length > 0 ? this.usable() : undefined;
    while (slot) {
      this.write(slot, this.queue.shift()!);
      slot = this.queue.length > 0 ? this.usable() : undefined;
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
        message.payload = undefined; // the bytes are what is kept from now on
      } catch (error) {
        return job.settle(new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error).message}`));
      }
    }
    if (this.confirms) this.unconfirmed.add(job);
    let accepted: boolean;
    try {
      accepted = writeMessage(slot.channel, message, this.confirms ? (error) => this.confirmed(slot, job, error) : undefined);
    } catch (error) {
      this.unconfirmed.delete(job);
      if ((error as Error).name === 'IllegalOperationError') {
        // The channel is closing; its close event has not reached us yet.
        this.retire(slot);
        return this.retryOrFail(job, slot, error as Error);
      }
      // amqplib registers the confirm callback before it encodes the frame (e.g. a header table
      // over 64 KiB): that channel's confirm bookkeeping is off by one now, so it is replaced.
      this.retire(slot);
      void slot.channel.close().catch(() => undefined);
      return job.settle(new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error).message}`));
    }
    if (!accepted) this.writable = false;
    if (this.confirms) this.sweep();
    else job.settle();
  }

  private confirmed(slot: Slot, job: Job, error: Error | null): void {
    const id = job.message.properties.messageId;
    // Gone already: it timed out while unconfirmed.
    if (!this.unconfirmed.delete(job)) {
      slot.returned.delete(id);
      return;
    }
    if (error) {
      this.retire(slot);
      this.retryOrFail(job, slot, error);
    } else if (slot.returned.size > 0 && slot.returned.delete(id)) {
      job.settle(new UnroutableError(job.message.exchange, job.message.routingKey));
    } else {
      job.settle();
    }
    this.pump();
  }

  private retryOrFail(job: Job, slot: Slot, error: Error): void {
    const { exchange } = job.message;
    if (error.message === 'message nacked') {
      return job.settle(new MessagingError(`RabbitMQ refused the message for "${target(job.message)}" (nack)`));
    }
    const reason = slot.closeReason ?? error.message;
    if (exchange !== '' && reason.includes(`no exchange '${exchange}'`)) {
      return job.settle(new ExchangeNotFoundError(exchange, reason));
    }
    if (this.closed || Date.now() >= job.deadline) {
      return job.settle(
        new ConnectionLostError(`The message for "${target(job.message)}" was not confirmed before the channel closed: ${maskUrl(reason)}`),
      );
    }
    // At-least-once: the broker may or may not have it, so it goes again with the same messageId.
    this.queue.unshift(job);
    this.sweep();
  }

  /** Fails what passed its deadline, waiting or written, with one timer for all of them. */
  private sweep(): void {
    if (this.sweeper) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const job of this.queue.takeExpired(now)) {
        job.settle(new PublishTimeoutError(`${this.notReady()}: gave up after waiting the publish timeout`));
      }
      for (const job of this.unconfirmed) {
        if (job.deadline > now) continue;
        this.unconfirmed.delete(job);
        job.settle(
          new PublishTimeoutError(
            `RabbitMQ did not confirm the message for "${target(job.message)}" in time` +
              `${this.connection.blockedReason ? ` (it blocks publishing: ${this.connection.blockedReason})` : ''}; it may still be delivered`,
          ),
        );
      }
      if (this.pendingConfirms === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
      this.pump();
    }, 50);
    this.sweeper.unref();
  }

  private notReady(): string {
    if (!this.connection.current) return `RabbitMQ is unreachable (${this.options.urls.map(maskUrl).join(', ')})`;
    if (this.connection.blockedReason) return `RabbitMQ blocks publishing (${this.connection.blockedReason})`;
    if (!this.slot) return `The ${this.role} channel is being reopened`;
    if (!this.writable) return 'The socket is not taking more data (waiting for drain)';
    return `${this.unconfirmed.size} messages wait for their confirm (maxInFlightPublishes)`;
  }

  private settleIdle(): void {
    if (this.idle.length === 0 || this.pendingConfirms > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}

function target(message: Outgoing): string {
  return message.exchange || message.routingKey;
}
