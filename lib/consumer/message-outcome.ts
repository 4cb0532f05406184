import { randomUUID } from 'node:crypto';
import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import {
  DIRECT_REPLY_TO,
  HEADER_ATTEMPTS,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ORIGIN,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_ROUTING_KEY,
  HEADER_REDELIVERIES,
  HEADER_REPLY_ERROR,
  MAX_ERROR_MESSAGE_LENGTH,
} from '../messaging.constants';
import { DecodeError, DeliveryLimitError, EncodeError, MessageRejectedError, SettlementError, UnrecoverableError, UnroutableError } from '../messaging.errors';
import type { Settlement } from '../interfaces/message-context.interface';
import type { DelayQueues } from '../publisher/delay-queues';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Outgoing, Publisher } from '../publisher/publisher';
import type { TrackContext } from '../context/track-context';
import type { ReplyRouter } from '../rpc/reply-router';
import { MessageLogLine } from '../telemetry/message-log-line';
import { type Delivery, originOf, readCounter, type SettleDelivery } from './delivery';
import { deadLetterQueueName, type HandlerDefinition, retryQueueName } from './handler-definition';

/** Declares a handler's topology again; the consumer of the handler's queue provides it. */
export type RedeclareTopology = () => Promise<void>;

/**
 * Settles a delivery: ack, reply, retry later or dead-letter. Copies for retry and dead-letter are
 * published mandatory and confirmed by the broker before the original is acked, so a crash in
 * between duplicates a message but never loses one. A copy whose queue is gone (deleted by an
 * operator) makes the topology be declared again and is sent once more; when a copy cannot be
 * published the original goes back to its queue, after a back-off that grows while outcomes keep
 * failing, so a broker that refuses every copy does not get the same message back in a hot loop.
 */
export class MessageOutcome {
  private redeclare?: RedeclareTopology;
  /** Outcomes in a row that could not be recorded; sets how long the next return waits. */
  private failuresInRow = 0;

  constructor(
    private readonly definition: HandlerDefinition,
    private readonly publisher: Publisher,
    private readonly rpc: ReplyRouter,
    private readonly delays: DelayQueues,
    private readonly track: TrackContext,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
  ) {}

  /** Set once by the consumer: how a queue found missing is declared again. */
  useTopology(redeclare: RedeclareTopology): void {
    this.redeclare = redeclare;
  }

  /**
   * The handler settled its message itself (MessageContext.ack & co.): that decides the outcome,
   * now; what the handler then returns or throws no longer counts. Never rejects.
   */
  readonly settle: SettleDelivery = (delivery, settlement, attempt) => {
    if (delivery.settled) throw new SettlementError(`The message ${delivery.msg.properties.messageId ?? ''} is settled already: settle it once`);
    delivery.settled = delivery.abandoned ? Promise.resolve() : this.record(delivery, () => this.apply(delivery, settlement, attempt));
    return delivery.settled;
  };

  /** Acks at once (the common case), or replies first when the message asks for a reply. */
  succeeded(delivery: Delivery, result: unknown, attempt: number): Promise<void> | void {
    if (delivery.settled) return delivery.settled;
    if (delivery.abandoned) return;
    if (!delivery.msg.properties.replyTo) return delivery.ack();
    return this.record(delivery, () => this.answer(delivery, attempt, result));
  }

  failed(delivery: Delivery, error: unknown, attempt: number): Promise<void> | void {
    if (delivery.settled) return delivery.settled;
    if (delivery.abandoned) return;
    return this.record(delivery, () => this.recordFailure(delivery, asError(error), attempt));
  }

  /**
   * A redelivered message had no outcome last time (its consumer died or lost its channel).
   * It goes back to the queue with a counter, and to the dead-letter queue once the counter
   * passes maxRedeliveries, so a message that kills every consumer cannot loop forever.
   */
  redelivered(delivery: Delivery, attempt: number): Promise<void> {
    const { maxRedeliveries } = this.options;
    const count = readCounter(delivery.msg.properties.headers ?? {}, HEADER_REDELIVERIES, maxRedeliveries) + 1;
    return this.record(delivery, async () => {
      if (count > maxRedeliveries) {
        const error = new DeliveryLimitError(`Delivered ${count} times without an outcome (maxRedeliveries ${maxRedeliveries})`);
        this.log(delivery, 'error', `${error.message}; moved to ${deadLetterQueueName(this.definition)}`);
        await this.deadLetter(delivery, error, attempt);
      } else {
        delivery.outcome = 'requeued';
        await this.copyTo(delivery, this.definition.queue, { [HEADER_REDELIVERIES]: count });
      }
    });
  }

  /**
   * Shutdown gave up waiting for this delivery's handler. Closing the channel would requeue it
   * marked redelivered, and the next instance would count that against maxRedeliveries; a copy
   * with its counters as they are goes back to the queue instead. Bounded by `timeoutMs`: if the
   * copy is not confirmed by then, the broker requeues the original when the channel closes.
   */
  async putBack(delivery: Delivery, timeoutMs: number): Promise<void> {
    try {
      await this.copyTo(delivery, this.definition.queue, {}, { timeoutMs });
      delivery.ack();
    } catch (error) {
      this.log(delivery, 'warn', `could not be put back unchanged (${asError(error).message}); RabbitMQ requeues it as redelivered`);
    }
  }

  /** Carries out a settlement; `record` acks afterwards unless it already put the message somewhere. */
  private async apply(delivery: Delivery, settlement: Settlement, attempt: number): Promise<void> {
    switch (settlement.kind) {
      case 'ack':
        return;
      case 'nack':
        return settlement.requeue ? delivery.requeue() : delivery.discard();
      case 'deadLetter':
        this.log(delivery, 'warn', `dead-lettered by its handler${settlement.reason ? ` (${settlement.reason})` : ''}; moved to ${deadLetterQueueName(this.definition)}`);
        return this.deadLetter(delivery, new UnrecoverableError(settlement.reason ?? 'Dead-lettered by its handler'), attempt);
      case 'retry': {
        delivery.outcome = 'retried';
        const delay = settlement.delayMs ?? this.policyDelay(attempt);
        const headers = { [HEADER_ATTEMPTS]: attempt };
        if (delay <= 0) return this.copyTo(delivery, this.definition.queue, headers);
        // Any delay, not only the policy's: through the delay queue of the default exchange.
        return this.copyTo(delivery, this.definition.queue, headers, { via: await this.delays.via('', delay) });
      }
    }
  }

  /** The retry policy's wait after try `attempt` (0 without a policy). */
  private policyDelay(attempt: number): number {
    const { retry } = this.definition;
    return retry ? retry.delaysMs[Math.min(attempt - 1, retry.delaysMs.length - 1)] : 0;
  }

  private async recordFailure(delivery: Delivery, failure: Error, attempt: number): Promise<void> {
    const { retry } = this.definition;
    if (delivery.msg.properties.replyTo) {
      // The caller is waiting for an answer, not for a retry: it gets the error.
      if (isRefused(failure)) await this.deadLetter(delivery, failure, attempt);
      await this.answer(delivery, attempt, undefined, failure);
    } else if (retry && attempt < retry.attempts && !(failure instanceof UnrecoverableError) && !isRefused(failure)) {
      const delay = this.policyDelay(attempt);
      this.log(delivery, 'warn', `failed on try ${attempt} of ${retry.attempts} (${failure.name}: ${failure.message}); retrying in ${delay} ms`);
      delivery.outcome = 'retried';
      await this.copyTo(delivery, delay > 0 ? retryQueueName(this.definition, delay) : this.definition.queue, {
        [HEADER_ATTEMPTS]: attempt,
      });
    } else {
      this.log(delivery, 'error', `failed on try ${attempt} (${failure.name}: ${failure.message}); moved to ${deadLetterQueueName(this.definition)}`);
      await this.deadLetter(delivery, failure, attempt);
    }
  }

  /** Acks once `work` (its copies and replies) is confirmed; otherwise the message goes back to its queue. */
  private async record(delivery: Delivery, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (error) {
      return this.requeue(delivery, error);
    }
    this.failuresInRow = 0;
    delivery.ack();
  }

  private async deadLetter(delivery: Delivery, error: Error, attempt: number): Promise<void> {
    delivery.outcome = 'dead_lettered';
    await this.copyTo(
      delivery,
      deadLetterQueueName(this.definition),
      {
        [HEADER_ERROR_NAME]: error.name,
        [HEADER_ERROR_MESSAGE]: truncate(error.message),
        [HEADER_ATTEMPTS]: attempt,
        [HEADER_ORIGINAL_QUEUE]: this.definition.baseQueue,
      },
      { keepForever: true },
    );
  }

  /**
   * Publishes a copy of the delivery for `queue`, with our headers added: straight to it, or `via`
   * a delay exchange that hands it on later. `keepForever`: without the message's own expiration.
   */
  private async copyTo(
    delivery: Delivery,
    queue: string,
    headers: Record<string, unknown>,
    { keepForever = false, timeoutMs = this.options.publishTimeoutMs, via = '' }: { keepForever?: boolean; timeoutMs?: number; via?: string } = {},
  ): Promise<void> {
    const original = delivery.msg.properties.headers ?? {};
    const origin = originOf(delivery.msg);
    const ours = { ...headers, [HEADER_ORIGINAL_EXCHANGE]: origin.exchange, [HEADER_ORIGINAL_ROUTING_KEY]: origin.routingKey };
    try {
      await this.send(() => this.copy(delivery, via, queue, { ...original, ...ours }, keepForever), timeoutMs);
    } catch (error) {
      if (!(error instanceof EncodeError)) throw error;
      // The original headers plus ours no longer fit in an AMQP table (64 KiB): the large entries
      // go, so the message still reaches its retry or dead-letter queue.
      const kept = compactHeaders(original);
      const dropped = Object.keys(original).length - Object.keys(kept).length;
      await this.send(() => this.copy(delivery, via, queue, { ...kept, ...ours, 'x-headers-dropped': dropped }, keepForever), timeoutMs);
    }
  }

  /**
   * Publishes a copy to one of the handler's own queues. When the broker returns it, that queue
   * is gone (an operator deleted it): the topology is declared again and the copy sent once more.
   */
  private async send(copy: () => Outgoing, timeoutMs: number): Promise<void> {
    try {
      await this.publisher.publish(copy(), timeoutMs);
    } catch (error) {
      if (!(error instanceof UnroutableError) || !this.redeclare) throw error;
      this.logger.warn(`${this.definition.name}: ${error.message}; declaring its queues again`);
      await this.redeclare();
      await this.publisher.publish(copy(), timeoutMs);
    }
  }

  private copy(delivery: Delivery, exchange: string, queue: string, headers: Record<string, unknown>, keepForever: boolean): Outgoing {
    const { properties, content } = delivery.msg;
    return {
      exchange,
      routingKey: queue,
      content,
      properties: {
        // Returned by the broker if the queue is gone, instead of being dropped while the original is acked.
        mandatory: true,
        contentType: properties.contentType,
        contentEncoding: properties.contentEncoding,
        deliveryMode: properties.deliveryMode,
        priority: properties.priority,
        correlationId: properties.correlationId,
        replyTo: properties.replyTo,
        // A dead-lettered message must not expire out of the dead-letter queue.
        expiration: keepForever ? undefined : properties.expiration,
        messageId: properties.messageId ?? randomUUID(),
        timestamp: properties.timestamp,
        type: properties.type,
        appId: properties.appId,
        headers,
      },
    };
  }

  /**
   * Replies; when the named reply queue does not exist nobody can receive the answer, so the
   * request is kept in the dead-letter queue with the reason (to be replayed), not dropped.
   */
  private async answer(delivery: Delivery, attempt: number, result: unknown, error?: Error): Promise<void> {
    try {
      await this.reply(delivery, result, error);
    } catch (failure) {
      if (!(failure instanceof UnroutableError)) throw failure;
      this.log(delivery, 'error', `could not be answered (${failure.message}); moved to ${deadLetterQueueName(this.definition)}`);
      await this.deadLetter(delivery, failure, attempt);
    }
  }

  private async reply(delivery: Delivery, result: unknown, error?: Error): Promise<void> {
    const { properties } = delivery.msg;
    const replyTo = properties.replyTo as string;
    const direct = replyTo.startsWith(DIRECT_REPLY_TO);
    const headers = this.track.addHeaders({
      [HEADER_ORIGIN]: this.options.serviceName,
      ...(error ? { [HEADER_REPLY_ERROR]: true, [HEADER_ERROR_NAME]: error.name, [HEADER_ERROR_MESSAGE]: truncate(error.message) } : {}),
    });
    const message = {
      exchange: '',
      routingKey: replyTo,
      payload: error ? { name: error.name, message: truncate(error.message) } : result,
      properties: {
        messageId: randomUUID(),
        correlationId: properties.correlationId ?? properties.messageId,
        persistent: !direct && this.options.persistent,
        mandatory: !direct,
        headers,
      },
    };
    if (direct) {
      // On the RPC channel, without confirm: the caller waits with its own timeout, and nothing is
      // gained by holding the ack for a confirm.
      this.rpc.submit(message, this.options.publishTimeoutMs, (failure) => {
        if (failure) this.log(delivery, 'warn', `could not reply to ${replyTo}: ${failure.message}`);
      });
      return;
    }
    await this.publisher.publish(message);
  }

  /** Back to the queue after a back-off, unless shutdown gives up on it meanwhile (then close() puts it back). */
  private async requeue(delivery: Delivery, error: unknown): Promise<void> {
    const { initialDelayMs, maxDelayMs } = this.options.reconnect;
    const delay = backoffDelay(this.failuresInRow++, initialDelayMs, maxDelayMs);
    this.log(delivery, 'error', `outcome could not be recorded (${asError(error).message}); message returned to the queue in ${delay} ms`);
    await pause(delay, delivery.signal);
    if (!delivery.abandoned) delivery.requeue();
  }

  private log(delivery: Delivery, level: 'warn' | 'error', text: string): void {
    const { messageId } = delivery.msg.properties;
    const { name, queue } = this.definition;
    this.logger[level](new MessageLogLine(`${name} message ${messageId ?? '-'} ${text}`, queue, messageId, this.track.requestId, name));
  }
}

/** Waits `ms`, or less if `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** The message itself is unacceptable (undecodable, or refused by a guard or pipe): no try can succeed. */
function isRefused(failure: Error): boolean {
  return failure instanceof DecodeError || failure instanceof MessageRejectedError;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Scalar headers of modest size, at most 256 of them: what surely fits beside ours. */
function compactHeaders(headers: Record<string, unknown>): Record<string, unknown> {
  const kept: Record<string, unknown> = {};
  let count = 0;
  for (const key of Object.keys(headers)) {
    const value = headers[key];
    const small = typeof value === 'number' || typeof value === 'boolean' || (typeof value === 'string' && value.length <= 1024);
    if (small && key.length <= 128 && count++ < 256) kept[key] = value;
  }
  return kept;
}

function truncate(text: string): string {
  return text.length > MAX_ERROR_MESSAGE_LENGTH ? text.slice(0, MAX_ERROR_MESSAGE_LENGTH) : text;
}
