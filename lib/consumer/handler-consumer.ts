import type { Logger } from '@nestjs/common';
import { CLS_ID, type ClsService } from 'nestjs-cls';
import type { ManagedConnection } from '../connection/managed-connection';
import { backoffDelay } from '../connection/backoff';
import { readTrackHeaders, TRACK_STORE } from '../context/track-store';
import { ownHeaders } from '../util/own-headers';
import { ShuttingDownError, TopologyError } from '../messaging.errors';
import { MAX_TRIES, type ResolvedMessagingOptions } from '../messaging.options';
import type { IdempotencyGuard } from './idempotency-guard';
import type { CodecRegistry } from '../codec/codec-registry';
import type { Telemetry } from '../telemetry/telemetry.interface';
import type { HandlerDefinition } from '../topology/handler-definition';
import { brokerCountsDeliveries } from '../topology/handler-queue-arguments';
import {
  BROADCAST_RETRY_QUEUE_EXPIRES_MS,
  checkHandlerTopology,
  declareHandlerTopology,
  type EarlierQueues,
  retryDelays,
} from '../topology/handler-topology';
import { AckBatcher } from './ack-batcher';
import { Delivery, DeliveryContext, ReturnedDeliveries } from './delivery';
import { readCounters } from './retry-counters';
import type { MessageOutcome } from './message-outcome';
import type { Invoker } from './queue-routes';
import type { Message, TransportChannel } from '../transport/transport.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import { isPromiseLike } from '../util/promise-like';
import { within } from '../util/within';

/**
 * Consumes one handler's queue on its own channel of the consumer connection, with the handler's
 * prefetch. Owns its in-flight deliveries; comes back after a lost connection, a channel error or
 * a broker-side cancel, but never after stop().
 */
export class HandlerConsumer {
  private channel?: TransportChannel;
  private acks?: AckBatcher;
  private consumerTag?: string;
  private stopped = false;
  private settingUp = false;
  private retryTimer?: NodeJS.Timeout;
  private failures = 0;
  private readonly inFlight = new Set<Delivery>();
  private readonly returned = new ReturnedDeliveries();
  /** Said once per consumer, not on every reconnect. */
  private keptEarlierArguments = false;
  private readonly earlierQueues: EarlierQueues = {
    withChannel: (work) => this.connection.withChannel(work),
    kept: (text) => {
      if (!this.keptEarlierArguments) this.logger.warn(text);
      this.keptEarlierArguments = true;
    },
    typeChecked: false,
  };
  private redeclaring?: Promise<void>;
  private renewTimer?: NodeJS.Timeout;
  private drainWaiters: Array<() => void> = [];
  private readonly onConnected = () => this.scheduleSetup(0);
  /** Made once: telemetry calls it per delivery without a closure per message. */
  private readonly processDelivery = (delivery: Delivery) => this.process(delivery);
  private readonly callHandler = (payload: unknown, context: MessageContext) => this.invoker.invoke(payload, context);

  constructor(
    readonly definition: HandlerDefinition,
    private readonly connection: ManagedConnection,
    private readonly invoker: Invoker,
    private readonly outcome: MessageOutcome,
    private readonly cls: ClsService,
    private readonly options: ResolvedMessagingOptions,
    private readonly codecs: CodecRegistry,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
    /** Set for `idempotent` handlers only: the others' path has no claim, await or allocation added. */
    private readonly idempotency?: IdempotencyGuard,
  ) {
    outcome.useTopology(() => this.redeclare());
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Whether the broker is delivering to this consumer now (false while it resumes after a loss). */
  get isConsuming(): boolean {
    return this.consumerTag !== undefined;
  }

  /**
   * Declares the topology (with `declare: false`, checks it exists) and starts consuming; a
   * refusal (e.g. 406) or anything missing fails startup.
   */
  async start(): Promise<void> {
    if (!this.definition.declare) await checkHandlerTopology(() => this.connection.createChannel(), this.definition);
    this.connection.on('connected', this.onConnected);
    await this.setup();
    if (this.definition.broadcast && retryDelays(this.definition).length > 0) {
      // Its retry queues expire unless declared again (they must not outlive the instance).
      this.renewTimer = setInterval(() => {
        this.redeclare().catch((error: Error) =>
          this.logger.warn(`Cannot renew the retry queues of ${this.definition.name}: ${error.message}`),
        );
      }, BROADCAST_RETRY_QUEUE_EXPIRES_MS / 2);
      this.renewTimer.unref();
    }
  }

  /**
   * Stops taking messages: basic.cancel, waited for until `deadline` at most (a stalled socket never
   * confirms it; what arrives meanwhile goes back untouched, see onMessage). In-flight ones go on.
   */
  async stop(deadline: number): Promise<void> {
    this.stopped = true;
    this.connection.off('connected', this.onConnected);
    clearTimeout(this.retryTimer);
    clearInterval(this.renewTimer);
    // Nothing new is taken from here on: a batch being gathered goes to its handler now, within the
    // drain, and so does a message whose decode ends later (no batch timer outlives the shutdown).
    this.invoker.stop?.();
    const { channel, consumerTag } = this;
    if (channel && consumerTag) {
      this.consumerTag = undefined;
      await within(
        channel.cancel(consumerTag).catch(() => undefined),
        Math.max(0, deadline - Date.now()),
      );
    }
  }

  /** Resolves when nothing is in flight or at the deadline, whichever comes first. */
  async drain(deadline: number): Promise<void> {
    if (this.inFlight.size === 0) return;
    await within(new Promise<void>((resolve) => this.drainWaiters.push(resolve)), Math.max(0, deadline - Date.now()));
  }

  /** Gives up on what still runs: signals abort and the messages go back to the queue on close(). */
  abandon(): Delivery[] {
    const left = [...this.inFlight];
    for (const delivery of left) delivery.abandon(new ShuttingDownError(`Shutdown gave up waiting for ${this.definition.name}`));
    return left;
  }

  /**
   * Closes the channel; the broker requeues whatever was not acked. What shutdown gave up on is
   * put back first, unchanged, so it does not come back counted as a redelivery.
   */
  async close(): Promise<void> {
    this.stopped = true;
    clearInterval(this.renewTimer);
    const channel = this.channel;
    this.channel = undefined;
    if (!channel) return;
    const closeBy = Date.now() + CLOSE_TIMEOUT_MS;
    const abandoned = [...this.inFlight].filter((delivery) => delivery.abandoned && !delivery.acked);
    await Promise.all(abandoned.map((delivery) => this.outcome.putBack(delivery, CLOSE_TIMEOUT_MS)));
    this.acks?.flush();
    // A stalled socket never answers: the connection's close destroys it after its own bound.
    await within(
      channel.close().catch(() => undefined),
      Math.max(0, closeBy - Date.now()),
    );
  }

  /**
   * Declares the topology again on a channel of its own (a refusal must not close the consuming
   * one), e.g. after a copy came back because an operator deleted its queue. Calls made while
   * one runs share it.
   */
  redeclare(): Promise<void> {
    return (this.redeclaring ??= this.declareOnce().finally(() => (this.redeclaring = undefined)));
  }

  private async declareOnce(): Promise<void> {
    if (!this.definition.declare) {
      throw new TopologyError(`${this.definition.name} has "declare: false": a queue it needs is missing and is not declared again`);
    }
    await this.connection.withChannel((channel) => declareHandlerTopology(channel, this.definition, this.earlierQueues));
  }

  private async setup(): Promise<void> {
    if (this.stopped) return;
    this.settingUp = true;
    try {
      const channel = await this.connection.createChannel();
      channel.on('close', (error?: Error) => {
        if (error)
          this.logger.warn(`Channel of ${this.definition.name} (queue "${this.definition.queue}") closed by RabbitMQ: ${error.message}`);
        this.onChannelClosed(channel);
      });
      const acks = new AckBatcher(channel, (delivery) => this.returned.add(delivery.msg));
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
    if (this.definition.declare) await declareHandlerTopology(channel, this.definition, this.earlierQueues);
    await channel.prefetch(this.definition.prefetch);
    const { consumerTag } = await channel.consume(this.definition.queue, (msg) => this.onMessage(channel, acks, msg), {
      noAck: false,
    });
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

  private scheduleSetup(
    delay = backoffDelay(this.failures, this.options.reconnect.initialDelayMs, this.options.reconnect.maxDelayMs),
  ): void {
    if (this.stopped || this.retryTimer || this.settingUp) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.channel && this.consumerTag) return;
      const resume = this.channel && this.acks ? this.consume(this.channel, this.acks) : this.setup();
      resume.catch((error: Error) => {
        this.failures++;
        this.logger.error(`Cannot resume ${this.definition.name}: ${error.message}`);
        if (this.connection.current) this.scheduleSetup();
      });
    }, delay);
  }

  private onMessage(channel: TransportChannel, acks: AckBatcher, msg: Message | null): void {
    if (msg === null) {
      // The broker cancelled us (the queue was deleted, or a node went away): declare and consume again.
      this.logger.warn(`RabbitMQ cancelled the consumer of ${this.definition.name} (queue "${this.definition.queue}" deleted?); resuming`);
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
    const delivery = new Delivery(msg, acks);
    acks.track(delivery);
    this.inFlight.add(delivery);
    const pending = this.telemetry.consume(this.definition.queue, msg, this.processDelivery, delivery);
    if (!pending) return this.settled(delivery);
    const settled = () => this.settled(delivery);
    pending.then(settled, settled);
  }

  private settled(delivery: Delivery): void {
    // What shutdown gave up on goes back to its queue later, unchanged, and is not counted.
    if (!delivery.abandoned) this.telemetry.settled(this.definition.queue, delivery.outcome);
    this.inFlight.delete(delivery);
    if (this.inFlight.size === 0 && this.drainWaiters.length > 0) {
      for (const done of this.drainWaiters.splice(0)) done();
    }
  }

  /**
   * Runs one delivery in its own CLS context: decode, handler and outcome all see the same store.
   * A handler that returns synchronously is acked in the same tick, with no promise in between.
   */
  private process(delivery: Delivery): Promise<void> | void {
    const { properties } = delivery.msg;
    const headers = ownHeaders(properties.headers);
    const track = readTrackHeaders(headers, properties.messageId, this.options.track);
    return this.cls.runWith({ [CLS_ID]: track.requestId, [TRACK_STORE]: track }, () => this.handle(delivery, headers));
  }

  private handle(delivery: Delivery, headers: Record<string, unknown>): Promise<void> | void {
    const { msg } = delivery;
    // Up to MAX_TRIES, not the policy's attempts: a handler's own context.retry() may go past them.
    delivery.counters = readCounters(
      headers,
      this.definition.baseQueue,
      msg.properties.messageId,
      MAX_TRIES - 1,
      this.options.maxRedeliveries,
    );
    const attempt = delivery.counters.attempts + 1;
    // Redelivered through our own doing (we returned it, or its ack went down with the channel):
    // not a sign of a message that kills its consumer, so it is not counted. Nor is anything on a
    // queue whose delivery limit RabbitMQ enforces.
    if (
      msg.fields.redelivered &&
      this.options.maxRedeliveries > 0 &&
      !brokerCountsDeliveries(this.definition.queueArguments) &&
      !this.returned.take(msg)
    ) {
      return this.outcome.redelivered(delivery, attempt);
    }
    // Its handler ran already, and its outcome could not be recorded then: carried out again, the
    // handler not run once more.
    const resumed = this.outcome.resume(delivery);
    if (resumed) return resumed;
    let payload: unknown;
    try {
      payload = this.codecs.decode(msg.content, msg.properties.contentType, msg.properties.contentEncoding);
    } catch (error) {
      return this.outcome.failed(delivery, error, attempt);
    }
    if (payload instanceof Promise) {
      // Inflated off the event loop (see CodecRegistry.decode).
      return payload.then(
        // Shutdown may have given up on it meanwhile (close() puts it back): no handler starts then.
        (value) => (delivery.abandoned ? undefined : this.invoke(delivery, headers, attempt, value)),
        (error: unknown) => this.outcome.failed(delivery, error, attempt),
      );
    }
    return this.invoke(delivery, headers, attempt, payload);
  }

  private invoke(delivery: Delivery, headers: Record<string, unknown>, attempt: number, payload: unknown): Promise<void> | void {
    if (this.idempotency) {
      return this.idempotency.handle(delivery, attempt, () =>
        this.telemetry.handler(
          this.definition.queue,
          this.callHandler,
          payload,
          new DeliveryContext(this.definition.queue, delivery, headers, attempt, this.outcome.settle),
        ),
      );
    }
    let result: unknown;
    try {
      result = this.telemetry.handler(
        this.definition.queue,
        this.callHandler,
        payload,
        new DeliveryContext(this.definition.queue, delivery, headers, attempt, this.outcome.settle),
      );
    } catch (error) {
      return this.outcome.failed(delivery, error, attempt);
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => this.outcome.succeeded(delivery, value, attempt),
        (error: unknown) => this.outcome.failed(delivery, error, attempt),
      );
    }
    return this.outcome.succeeded(delivery, result, attempt);
  }
}

/**
 * How long close() waits for the broker, in all: the copies of the deliveries shutdown gave up on
 * (confirmed), then the channel's close-ok.
 */
const CLOSE_TIMEOUT_MS = 2_000;
