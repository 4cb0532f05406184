import { readNestPacket } from '../codec/nest-rmq-wire';
import { isStructuredCloudEvent, readStructuredCloudEvent } from '../codec/cloud-events';
import type { CloudEventAttributes } from '../interfaces/message-context.interface';
import type { Logger } from '@nestjs/common';
import { CLS_ID, type ClsService } from 'nestjs-cls';
import type { ManagedConnection } from '../connection/managed-connection';
import { readTrackHeaders, TRACK_STORE } from '../context/track-store';
import { ownHeaders } from '../util/own-headers';
import { ShuttingDownError, TopologyError } from '../messaging.errors';
import { MAX_TRIES, type ResolvedMessagingOptions } from '../messaging.options';
import type { DeliveryStep } from './delivery-step';
import type { CodecRegistry } from '../codec/codec-registry';
import type { Telemetry } from '../telemetry/telemetry.interface';
import { type HandlerDefinition, policyDelays } from '../topology/handler-definition';
import { brokerCountsDeliveries } from '../topology/handler-queue-arguments';
import {
  BROADCAST_RETRY_QUEUE_EXPIRES_MS,
  checkHandlerTopology,
  declareHandlerTopology,
  type EarlierQueues,
} from '../topology/handler-topology';
import type { AckBatcher } from './ack-batcher';
import { ConsumerChannel } from './consumer-channel';
import { InFlightDeliveries } from './in-flight-deliveries';
import { Delivery, DeliveryContext, ReturnedDeliveries } from './delivery';
import { readCounters } from './retry-counters';
import type { MessageOutcome } from './message-outcome';
import type { Invoker } from './queue-routes';
import type { Message } from '../transport/transport.interface';
import type { MessageContext } from '../interfaces/message-context.interface';

/**
 * Consumes one handler's queue on its own channel of the consumer connection, with the handler's
 * prefetch (the channel and its resume loop: ConsumerChannel), keeps its in-flight deliveries
 * (InFlightDeliveries), and runs each delivery: counters, decode, the handler, its outcome.
 */
export class HandlerConsumer {
  private readonly channel: ConsumerChannel;
  private readonly inFlight = new InFlightDeliveries();
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
  /** Made once: telemetry calls it per delivery without a closure per message. */
  private readonly processDelivery = (delivery: Delivery) => this.process(delivery);
  private readonly callHandler = (payload: unknown, context: MessageContext) => this.invoker.invoke(payload, context);

  constructor(
    readonly definition: HandlerDefinition,
    private readonly connection: ManagedConnection,
    private readonly invoker: Invoker,
    private readonly outcome: MessageOutcome,
    private readonly cls: ClsService,
    private readonly options: Pick<ResolvedMessagingOptions, 'maxRedeliveries' | 'reconnect' | 'track'>,
    private readonly codecs: CodecRegistry,
    private readonly telemetry: Telemetry,
    private readonly logger: Logger,
    /**
     * Runs the handler's call and settles the delivery: SettleByResult, behind an IdempotencyGuard
     * for `idempotent` handlers only (the others' path has no claim, await or allocation added).
     */
    private readonly step: DeliveryStep,
  ) {
    outcome.useTopology(() => this.redeclare());
    this.channel = new ConsumerChannel(
      definition,
      connection,
      options.reconnect,
      logger,
      async (channel) => {
        if (definition.declare) await declareHandlerTopology(channel, definition, this.earlierQueues);
      },
      (delivery) => this.returned.add(delivery.msg),
      (msg, acks) => this.onDelivery(msg, acks),
    );
  }

  get inFlightCount(): number {
    return this.inFlight.size;
  }

  /** Whether the broker is delivering to this consumer now (false while it resumes after a loss). */
  get isConsuming(): boolean {
    return this.channel.isConsuming;
  }

  /**
   * Declares the topology (with `declare: false`, checks it exists) and starts consuming; a
   * refusal (e.g. 406) or anything missing fails startup.
   */
  async start(): Promise<void> {
    if (!this.definition.declare) await checkHandlerTopology(() => this.connection.createChannel(), this.definition);
    await this.channel.start();
    if (this.definition.broadcast && policyDelays(this.definition.retry).length > 0) {
      // Its retry queues expire unless declared again (they must not outlive the instance).
      this.renewTimer = setInterval(() => {
        this.redeclare().catch((error: Error) =>
          this.logger.warn(`Cannot renew the retry queues of ${this.definition.name}: ${error.message}`),
        );
      }, BROADCAST_RETRY_QUEUE_EXPIRES_MS / 2);
      this.renewTimer.unref();
    }
  }

  /** Stops taking messages (see ConsumerChannel.stop). In-flight ones go on. */
  async stop(deadline: number): Promise<void> {
    clearInterval(this.renewTimer);
    // Nothing new is taken from here on: a batch being gathered goes to its handler now, within the
    // drain, and so does a message whose decode ends later (no batch timer outlives the shutdown).
    this.invoker.stop?.();
    await this.channel.stop(deadline);
  }

  /** Resolves when nothing is in flight or at the deadline, whichever comes first. */
  drain(deadline: number): Promise<void> {
    return this.inFlight.drain(deadline);
  }

  /** Gives up on what still runs: signals abort and the messages go back to the queue on close(). */
  abandon(): Delivery[] {
    return this.inFlight.abandon(new ShuttingDownError(`Shutdown gave up waiting for ${this.definition.name}`));
  }

  /**
   * Closes the channel; the broker requeues whatever was not acked. What shutdown gave up on is
   * put back first, unchanged, so it does not come back counted as a redelivery.
   */
  async close(): Promise<void> {
    clearInterval(this.renewTimer);
    await this.channel.close(Date.now() + CLOSE_TIMEOUT_MS, () =>
      Promise.all(this.inFlight.abandonedUnacked().map((delivery) => this.outcome.putBack(delivery, CLOSE_TIMEOUT_MS))),
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

  private onDelivery(msg: Message, acks: AckBatcher): void {
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
  }

  /**
   * Runs one delivery in its own CLS context: decode, handler and outcome all see the same store.
   * A handler that returns synchronously is settled in the same tick, with no promise in between.
   */
  private process(delivery: Delivery): Promise<void> | void {
    const { properties } = delivery.msg;
    const headers = ownHeaders(properties.headers);
    const track = readTrackHeaders(headers, delivery.id, this.options.track);
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
    // Its handler ran already, and its outcome was not recorded before its channel went: what is
    // left of it is done here, the handler not run once more.
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

  private invoke(delivery: Delivery, headers: Record<string, unknown>, attempt: number, decoded: unknown): Promise<void> | void {
    const { queue, format } = this.definition;
    let payload = decoded;
    let pattern: string | undefined;
    let event: CloudEventAttributes | undefined;
    try {
      if (format === 'nest-rmq') {
        // A Nest client's packet: the handler takes its data, the pattern picks the handler.
        ({ data: payload, route: pattern } = readNestPacket(decoded));
      } else if (isStructuredCloudEvent(delivery.msg.properties.contentType)) {
        // A structured CloudEvent: the handler takes its data, its context the attributes.
        ({ data: payload, attributes: event } = readStructuredCloudEvent(decoded));
      }
    } catch (error) {
      return this.outcome.failed(delivery, error, attempt);
    }
    return this.step.run(delivery, attempt, () =>
      this.telemetry.handler(
        queue,
        this.callHandler,
        payload,
        new DeliveryContext(queue, delivery, headers, attempt, this.outcome.settle, pattern, event),
      ),
    );
  }
}

/**
 * How long close() waits for the broker, in all: the copies of the deliveries shutdown gave up on
 * (confirmed), then the channel's close-ok.
 */
const CLOSE_TIMEOUT_MS = 2_000;
