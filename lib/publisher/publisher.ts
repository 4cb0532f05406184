import { EventEmitter } from 'node:events';
import type { Logger } from '@nestjs/common';
import type * as amqp from 'amqplib';
import { IllegalOperationError } from 'amqplib';
import type { ManagedConnection } from '../connection/managed-connection';
import { maskUrl } from '../connection/url';
import type { Encoded } from '../codec/codec.registry';
import type { ResolvedMessagingOptions } from '../messaging.options';
import {
  ConnectionLostError,
  EncodeError,
  ExchangeNotFoundError,
  PublishNackedError,
  PublishRefusedError,
  PublishTimeoutError,
  ShuttingDownError,
  UnroutableError,
} from '../messaging.errors';
import { JobQueue } from './job-queue';
import { writeMessage } from './wire';
import { within } from '../util/within';

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
  /** Submission order, which a republish after a lost channel keeps. */
  seq: number;
  /** What a basic.return names this publish by, when it is mandatory on a confirm channel. */
  returnKey?: string;
  /** The broker returned it unroutable on its current channel; its confirm follows. */
  returned: boolean;
  /** Its body is being compressed off the event loop; it waits at the head of the queue meanwhile. */
  encoding?: boolean;
  /** Its payload could not be encoded: it fails when its turn comes. */
  unencodable?: EncodeError;
}

/** Why the broker closed a channel, as amqplib reports it on the channel's `error` event. */
interface ChannelCloseError extends Error {
  code?: number;
  classId?: number;
  methodId?: number;
}

/** One channel and what belongs to it alone. */
interface Slot {
  channel: amqp.Channel;
  /**
   * Mandatory publishes awaiting their confirm, by return key. A basic.return carries no publish
   * sequence number and RabbitMQ may coalesce the confirms of several publishes into one ack, so a
   * return can only be matched exactly while one publish per key is in flight: a second one with
   * the same key waits for the first's confirm (see `waitsForTwin`).
   */
  mandatory: Map<string, Job>;
  /** Publishes that were unconfirmed when the channel went; written again once it has closed. */
  orphans: Job[];
  closeError?: ChannelCloseError;
  /** amqplib is failing its pending confirms: an error now means the channel went, not a nack. */
  closing: boolean;
  closed: boolean;
}

/** AMQP basic.publish, the method a channel error names when a publish caused it. */
const BASIC_PUBLISH = { classId: 60, methodId: 40 };
const NOT_FOUND = 404;
const ACCESS_REFUSED = 403;
/** How long closing a channel may take: a blocked connection (resource alarm) never answers. */
const CHANNEL_CLOSE_TIMEOUT_MS = 2_000;

/**
 * Publishes on one channel of the publisher connection, with confirms unless told otherwise.
 * Messages are written straight to the socket while it takes them and fewer than
 * `maxInFlightPublishes` wait for their confirm; otherwise (no connection, broker alarm, full
 * socket, full window) they wait unencoded in one FIFO that is pumped in order. One timer fails
 * what passes its deadline, written or not. Publishes the broker did not confirm before the
 * channel went away are written again, in their original order. A nack or a return fails that
 * one publish and leaves the channel as it is.
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
  private submitted = 0;

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
    const returnKey =
      this.confirms && message.properties.mandatory ? keyOf(message.exchange, message.routingKey, message.properties.messageId) : undefined;
    const job: Job = { message, deadline: Date.now() + timeoutMs, settle, seq: this.submitted++, returnKey, returned: false };
    const slot = this.queue.length === 0 ? this.usable() : undefined;
    if (slot && !waitsForTwin(slot, job) && this.encoded(job)) return this.write(slot, job);
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
    if (slot) await closeWithin(slot.channel);
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
    const slot: Slot = { channel, mandatory: new Map(), orphans: [], closing: false, closed: false };
    channel.on('error', (error: ChannelCloseError) => {
      slot.closeError = error;
      this.logger.warn(`The ${this.role} channel was closed by RabbitMQ: ${maskUrl(error.message)}`);
    });
    channel.on('return', (message: amqp.Message) => {
      if (!this.confirms) return void this.emit('return', message);
      const job = slot.mandatory.get(keyOf(message.fields.exchange, message.fields.routingKey, message.properties.messageId));
      if (job) job.returned = true;
    });
    channel.on('drain', () => {
      if (this.slot !== slot) return;
      this.writable = true;
      this.pump();
    });
    // amqplib fails this channel's pending confirms in its own `close` listener, which comes
    // first: this one, put before it, tells those failures from nacks.
    channel.prependListener('close', () => (slot.closing = true));
    // ...and this one, after it, writes again what they left unconfirmed and replaces the channel.
    channel.on('close', () => this.onClosed(slot));
    if (this.closed) {
      await closeWithin(channel);
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
    this.republish(slot);
    this.emit('channel-lost', maskUrl(slot.closeError?.message ?? 'connection closed'));
    // A channel-level error (e.g. 404 on a missing exchange) leaves the connection up: reopen now.
    if (this.connection.current && !this.closed) void this.openChannel();
  }

  /** Stops writing to a channel that is going away. */
  private retire(slot: Slot): void {
    if (this.slot === slot) this.slot = undefined;
  }

  private pump(): void {
    for (;;) {
      const next = this.queue.peek();
      const slot = next && this.usable();
      if (!slot || waitsForTwin(slot, next) || !this.encoded(next)) break;
      this.write(slot, this.queue.shift()!);
    }
    this.settleIdle();
  }

  /**
   * Encodes a job's payload once it may be written (so the window bounds the encoded bytes too).
   * False while its compression runs off the event loop: it stays first in line, which keeps the
   * publish order, and pumping resumes when it is done.
   */
  private encoded(job: Job): boolean {
    const { message } = job;
    if (message.content !== undefined || job.unencodable) return true;
    if (job.encoding) return false;
    let encoded: Encoded | Promise<Encoded>;
    try {
      encoded = this.options.codecs.encode(message.payload, message.properties.contentType);
    } catch (error) {
      job.unencodable = unencodable(message, error);
      return true;
    }
    if (!(encoded instanceof Promise)) {
      useEncoded(message, encoded);
      return true;
    }
    job.encoding = true;
    encoded.then(
      (bytes) => useEncoded(message, bytes),
      (error: unknown) => (job.unencodable = unencodable(message, error)),
    ).finally(() => {
      job.encoding = false;
      this.pump();
    });
    return false;
  }

  private write(slot: Slot, job: Job): void {
    if (job.unencodable) return job.settle(job.unencodable);
    const { message } = job;
    if (this.confirms) this.unconfirmed.add(job);
    job.returned = false;
    let accepted: boolean;
    try {
      accepted = writeMessage(slot.channel, message, this.confirms ? (error) => this.confirmed(slot, job, error) : undefined);
    } catch (error) {
      if (error instanceof IllegalOperationError) {
        // The channel is closing; its close event has not reached us yet. Pending (with or
        // without confirms) until that close writes it again.
        this.retire(slot);
        this.unconfirmed.add(job);
        return this.orphan(slot, job);
      }
      // Nothing was written (amqplib encodes every frame before it writes one): this message
      // fails alone, and the channel, with whatever else is in flight on it, stays.
      this.unconfirmed.delete(job);
      return job.settle(new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error).message}`));
    }
    if (job.returnKey !== undefined) slot.mandatory.set(job.returnKey, job);
    if (!accepted) this.writable = false;
    if (this.confirms) this.sweep();
    else job.settle();
  }

  private confirmed(slot: Slot, job: Job, error: Error | null): void {
    if (job.returnKey !== undefined && slot.mandatory.get(job.returnKey) === job) slot.mandatory.delete(job.returnKey);
    // Gone already: it timed out while unconfirmed.
    if (!this.unconfirmed.has(job)) return;
    if (error && slot.closing) return this.orphan(slot, job);
    this.unconfirmed.delete(job);
    if (error) job.settle(new PublishNackedError(job.message.exchange, job.message.routingKey));
    else if (job.returned) job.settle(new UnroutableError(job.message.exchange, job.message.routingKey));
    else job.settle();
    this.pump();
  }

  /** Keeps a publish its channel left unconfirmed (still pending) until that channel has closed. */
  private orphan(slot: Slot, job: Job): void {
    slot.orphans.push(job);
    if (slot.closed) this.republish(slot);
  }

  /**
   * Writes again, in their first order and ahead of what waits, the publishes a closed channel
   * left unconfirmed (at-least-once: the broker may or may not have them; same messageId), or fails
   * them: the broker refused their exchange, or their time is up.
   */
  private republish(slot: Slot): void {
    const orphans = slot.orphans.splice(0).sort((a, b) => a.seq - b.seq);
    const again: Job[] = [];
    for (const job of orphans) {
      // Gone already: it timed out while parked here.
      if (!this.unconfirmed.delete(job)) continue;
      const failure = this.refusal(slot, job) ?? this.lost(slot, job);
      if (failure) job.settle(failure);
      else again.push(job);
    }
    if (again.length === 0) return;
    this.queue.putBack(again);
    this.sweep();
  }

  /** The broker closed the channel over a publish to this job's exchange, which it will refuse again. */
  private refusal(slot: Slot, job: Job): Error | undefined {
    const error = slot.closeError;
    if (error?.classId !== BASIC_PUBLISH.classId || error.methodId !== BASIC_PUBLISH.methodId) return undefined;
    const { exchange } = job.message;
    if (refusedExchange(error) !== (exchange || 'amq.default')) return undefined;
    const reason = brokerReason(error);
    if (error.code === NOT_FOUND) return new ExchangeNotFoundError(exchange, reason);
    if (error.code === ACCESS_REFUSED) return new PublishRefusedError(exchange, reason);
    return undefined;
  }

  private lost(slot: Slot, job: Job): Error | undefined {
    if (!this.closed && Date.now() < job.deadline) return undefined;
    const reason = slot.closeError?.message ?? 'connection closed';
    return new ConnectionLostError(`The message for "${target(job.message)}" was not confirmed before the channel closed: ${maskUrl(reason)}`);
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

function useEncoded(message: Outgoing, encoded: Encoded): void {
  message.content = encoded.content;
  message.properties.contentType ??= encoded.contentType;
  if (encoded.contentEncoding) message.properties.contentEncoding = encoded.contentEncoding;
  message.payload = undefined; // the bytes are what is kept from now on
}

function unencodable(message: Outgoing, error: unknown): EncodeError {
  return new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error)?.message ?? String(error)}`, { cause: error });
}

/** What a basic.return names a publish by. */
function keyOf(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\n${routingKey}\n${String(messageId)}`;
}

/** A mandatory publish whose twin (same return key) awaits its confirm on this channel waits for it. */
function waitsForTwin(slot: Slot, job: Job): boolean {
  return job.returnKey !== undefined && slot.mandatory.has(job.returnKey);
}

/**
 * The exchange a channel error over a publish concerns. The close frame has no field for it:
 * RabbitMQ names the resource in its reply text ("... exchange 'orders' in vhost '/' ..."). The
 * error's code decides what happened; this only tells which of the publishes in flight it was.
 */
function refusedExchange(error: ChannelCloseError): string | undefined {
  return /\bexchange '((?:[^']|'')*)' in vhost '/.exec(error.message)?.[1];
}

/** The broker's own words from amqplib's "Channel closed by server: 404 (NOT-FOUND) with message "..."". */
function brokerReason(error: ChannelCloseError): string {
  return /with message "(.*)"$/s.exec(error.message)?.[1] ?? error.message;
}

/** Closes a channel, giving up after a while: a blocked connection never answers the close. */
async function closeWithin(channel: amqp.Channel): Promise<void> {
  await within(channel.close().catch(() => undefined), CHANNEL_CLOSE_TIMEOUT_MS);
}
