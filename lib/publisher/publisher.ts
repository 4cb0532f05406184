import type { Telemetry } from '../telemetry/telemetry.interface';
import type { CodecRegistry } from '../codec/codec-registry';
import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import type { ManagedConnection } from '../connection/managed-connection';
import { maskUrl } from '../util/url';
import type { ResolvedMessagingOptions } from '../messaging.options';
import {
  ConnectionLostError,
  EncodeError,
  PublishNackedError,
  PublishTimeoutError,
  ShuttingDownError,
  UnroutableError,
} from '../messaging.errors';
import { ChannelClosedError } from '../transport/transport.errors';
import type { ConfirmOutcome, Message, TransportChannel } from '../transport/transport.interface';
import { ConfirmWindow } from './confirm-window';
import { DeadlineSweeper } from './deadline-sweeper';
import { JobQueue } from './job-queue';
import { LazyEncoder } from './lazy-encoder';
import { type Outgoing, type PublishJob, type Settle, target } from '../transport/outgoing';
import { type ChannelSlot, PublishChannel } from './publish-channel';
import { refusalOf } from './publish-refusal';

export type { Outgoing, PublishProperties, Settle } from '../transport/outgoing';

/** What a publisher tells the reply router. */
export interface PublisherEvents {
  /** A new channel, opened after the connection came (back). */
  channel: [TransportChannel];
  /** The channel went (with the broker's reason, masked). */
  'channel-lost': [string];
  /** Without confirms: a message the broker returned unroutable. */
  return: [Message];
}

/**
 * Publishes on one channel of the publisher connection, with confirms unless told otherwise.
 * Messages are written straight to the socket while it takes them and the confirm window has
 * room; otherwise (no connection, broker alarm, full socket, full window) they wait unencoded in
 * one FIFO that is pumped in order. Publishes the broker did not confirm before the channel went
 * away are written again, in their original order. A nack or a return fails that one publish and
 * leaves the channel as it is. The parts: PublishChannel (the channel's life), ConfirmWindow (what
 * awaits its confirm), JobQueue (what waits to be written), ReturnMatcher (returns to publishes),
 * LazyEncoder (bytes made when written), DeadlineSweeper (one timer for every deadline).
 */
export class Publisher extends EventEmitter<PublisherEvents> {
  private readonly channel: PublishChannel;
  private readonly queue = new JobQueue<PublishJob>();
  private readonly window: ConfirmWindow;
  private readonly encoder: LazyEncoder;
  private readonly sweeper = new DeadlineSweeper(() => this.sweep());
  private idle: Array<() => void> = [];
  private closed = false;
  private submitted = 0;

  constructor(
    private readonly connection: ManagedConnection,
    private readonly options: Pick<ResolvedMessagingOptions, 'maxBufferedPublishes' | 'maxInFlightPublishes' | 'publishTimeoutMs' | 'urls'>,
    codecs: CodecRegistry,
    private readonly telemetry: Telemetry,
    logger: Logger,
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
    this.window = new ConfirmWindow(options.maxInFlightPublishes);
    this.encoder = new LazyEncoder(codecs, () => this.pump());
    this.channel = new PublishChannel(connection, confirms, role, logger, {
      opened: (slot) => {
        this.emit('channel', slot.channel);
        this.pump();
      },
      confirmed: (slot, job, outcome) => this.confirmed(slot, job, outcome),
      returned: (slot, message) => (confirms ? slot.returns.returned(message) : this.emit('return', message)),
      drained: () => this.pump(),
      closed: (slot) => {
        this.republish(slot);
        this.emit('channel-lost', maskUrl(slot.closeError?.message ?? 'connection closed'));
      },
    });
    connection.on('unblocked', () => this.pump());
  }

  get pendingConfirms(): number {
    return this.window.size + this.queue.length;
  }

  async start(): Promise<void> {
    await this.channel.open();
  }

  /** Resolves with the message id once the broker confirmed it (or rejects with why it could not). */
  publish(message: Outgoing, timeoutMs = this.options.publishTimeoutMs): Promise<string> {
    const id = message.properties.messageId;
    return new Promise((resolve, reject) => this.submit(message, timeoutMs, (error) => (error ? reject(error) : resolve(id))));
  }

  /** Publishes and reports the broker's verdict to `settle`, for callers that do not wait on it. */
  submit(message: Outgoing, timeoutMs: number, settle: Settle): void {
    settle = this.telemetry.publishing(message, settle);
    if (this.closed) return settle(new ShuttingDownError('The messaging module is shut down: nothing more can be sent'));
    const returnKey = this.confirms && message.properties.mandatory ? message.properties.messageId : undefined;
    const job: PublishJob = {
      message,
      deadline: Date.now() + timeoutMs,
      settle,
      seq: this.submitted++,
      returnKey,
      returned: false,
      windowSlot: undefined,
    };
    const slot = this.queue.length === 0 ? this.usable() : undefined;
    if (slot && !slot.returns.waitsForTwin(job) && this.encoder.ready(job)) return this.write(slot, job);
    if ((!this.channel.slot || this.connection.blockedReason) && this.queue.length >= this.options.maxBufferedPublishes) {
      return settle(new PublishTimeoutError(`${this.notReady()}, and ${this.queue.length} messages already wait (maxBufferedPublishes)`));
    }
    this.queue.push(job);
    this.sweeper.start();
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
    this.sweeper.stop();
    for (const job of this.queue.clear())
      job.settle(new ShuttingDownError('The messaging module shut down before the message could be sent'));
    await this.channel.close();
    this.settleIdle();
  }

  /** The channel, when a message may be written to it now. */
  private usable(): ChannelSlot | undefined {
    if (!this.channel.writable || this.connection.blockedReason || this.window.full) return undefined;
    return this.channel.slot;
  }

  private pump(): void {
    for (;;) {
      const next = this.queue.peek();
      const slot = next && this.usable();
      if (!slot || slot.returns.waitsForTwin(next) || !this.encoder.ready(next)) break;
      this.write(slot, this.queue.shift()!);
    }
    this.settleIdle();
  }

  private write(slot: ChannelSlot, job: PublishJob): void {
    if (job.unencodable) return job.settle(job.unencodable);
    const { message } = job;
    if (this.confirms) this.window.add(job);
    let accepted: boolean;
    try {
      accepted = slot.channel.publish(
        message.exchange,
        message.routingKey,
        message.content!,
        message.properties,
        this.confirms ? slot.confirmed : undefined,
        job,
      );
    } catch (error) {
      if (error instanceof ChannelClosedError) {
        // The channel is closing; its close event has not reached us yet. Pending (with or
        // without confirms) until that close writes it again.
        this.channel.retire(slot);
        this.window.add(job);
        return this.orphan(slot, job);
      }
      // Nothing was written (the transport encodes every frame before it writes one): this
      // message fails alone, and the channel, with whatever else is in flight on it, stays.
      this.window.delete(job);
      return job.settle(new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error).message}`));
    }
    slot.returns.written(job);
    if (!accepted) this.channel.writable = false;
    if (this.confirms) this.sweeper.start();
    else job.settle();
  }

  private confirmed(slot: ChannelSlot, job: PublishJob, outcome: ConfirmOutcome): void {
    slot.returns.confirmed(job);
    // Gone already: it timed out while unconfirmed.
    if (!this.window.has(job)) return;
    if (outcome === 'closed') return this.orphan(slot, job);
    this.window.delete(job);
    if (outcome === 'nack') job.settle(new PublishNackedError(job.message.exchange, job.message.routingKey));
    else if (job.returned) job.settle(new UnroutableError(job.message.exchange, job.message.routingKey));
    else job.settle();
    this.pump();
  }

  /** Keeps a publish its channel left unconfirmed (still pending) until that channel has closed. */
  private orphan(slot: ChannelSlot, job: PublishJob): void {
    slot.orphans.push(job);
    if (slot.closed) this.republish(slot);
  }

  /**
   * Writes again, in their first order and ahead of what waits, the publishes a closed channel
   * left unconfirmed (at-least-once: the broker may or may not have them; same messageId), or fails
   * them: the broker refused their exchange, or their time is up.
   */
  private republish(slot: ChannelSlot): void {
    const orphans = slot.orphans.splice(0).sort((a, b) => a.seq - b.seq);
    const again: PublishJob[] = [];
    for (const job of orphans) {
      // Gone already: it timed out while parked here.
      if (!this.window.delete(job)) continue;
      const failure = refusalOf(slot.closeError, job.message) ?? this.lost(slot, job);
      if (failure) job.settle(failure);
      else again.push(job);
    }
    if (again.length === 0) return;
    this.queue.putBack(again);
    this.sweeper.start();
  }

  private lost(slot: ChannelSlot, job: PublishJob): Error | undefined {
    if (!this.closed && Date.now() < job.deadline) return undefined;
    const reason = slot.closeError?.message ?? 'connection closed';
    return new ConnectionLostError(
      `The message for "${target(job.message)}" was not confirmed before the channel closed: ${maskUrl(reason)}`,
    );
  }

  /** Fails what passed its deadline, waiting or written; returns whether anything is still pending. */
  private sweep(): boolean {
    const now = Date.now();
    for (const job of this.queue.takeExpired(now)) {
      job.settle(new PublishTimeoutError(`${this.notReady()}: gave up after waiting the publish timeout`));
    }
    for (const job of this.window.takeExpired(now)) {
      job.settle(
        new PublishTimeoutError(
          `RabbitMQ did not confirm the message for "${target(job.message)}" in time` +
            `${this.connection.blockedReason ? ` (it blocks publishing: ${this.connection.blockedReason})` : ''}; it may still be delivered`,
        ),
      );
    }
    const pending = this.pendingConfirms > 0;
    this.pump();
    return pending;
  }

  private notReady(): string {
    if (!this.connection.current) return `RabbitMQ is unreachable (${this.options.urls.map(maskUrl).join(', ')})`;
    if (this.connection.blockedReason) return `RabbitMQ blocks publishing (${this.connection.blockedReason})`;
    if (!this.channel.slot) return `The ${this.role} channel is being reopened`;
    if (!this.channel.writable) return 'The socket is not taking more data (waiting for drain)';
    return `${this.window.size} messages wait for their confirm (maxInFlightPublishes)`;
  }

  private settleIdle(): void {
    if (this.idle.length === 0 || this.pendingConfirms > 0) return;
    for (const resolve of this.idle.splice(0)) resolve();
  }
}
