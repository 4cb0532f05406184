import { randomUUID } from 'node:crypto';
import type { Logger } from '@nestjs/common';
import {
  DIRECT_REPLY_TO,
  HEADER_ATTEMPTS,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ORIGINAL_QUEUE,
  HEADER_REDELIVERIES,
  HEADER_REPLY_ERROR,
  MAX_ERROR_MESSAGE_LENGTH,
} from '../messaging.constants';
import { DecodeError, DeliveryLimitError, EncodeError, UnrecoverableError, UnroutableError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Outgoing, Publisher } from '../publisher/publisher';
import type { TrackContext } from '../context/track-context';
import type { ReplyRouter } from '../rpc/reply-router';
import { own } from '../context/track-store';
import type { Delivery } from './delivery';
import { deadLetterQueueName, type HandlerDefinition, retryQueueName } from './handler-definition';

/**
 * Settles a delivery: ack, reply, retry later or dead-letter. Copies for retry and dead-letter are
 * confirmed by the broker before the original is acked, so a crash in between duplicates a message
 * but never loses one; when they cannot be published the original goes back to its queue.
 */
export class MessageOutcome {
  constructor(
    private readonly definition: HandlerDefinition,
    private readonly publisher: Publisher,
    private readonly rpc: ReplyRouter,
    private readonly track: TrackContext,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
  ) {}

  /** Acks at once (the common case), or replies first when the message asks for a reply. */
  succeeded(delivery: Delivery, result: unknown): Promise<void> | void {
    if (delivery.abandoned) return;
    if (!delivery.msg.properties.replyTo) return delivery.ack();
    return this.reply(delivery, result).then(
      () => delivery.ack(),
      (error: unknown) => this.requeue(delivery, error),
    );
  }

  async failed(delivery: Delivery, error: unknown, attempt: number): Promise<void> {
    if (delivery.abandoned) return;
    const { retry } = this.definition;
    const failure = asError(error);
    try {
      if (delivery.msg.properties.replyTo) {
        // The caller is waiting for an answer, not for a retry: it gets the error.
        if (failure instanceof DecodeError) await this.deadLetter(delivery, failure, attempt);
        await this.reply(delivery, undefined, failure);
      } else if (retry && attempt < retry.attempts && !(failure instanceof UnrecoverableError) && !(failure instanceof DecodeError)) {
        const delay = retry.delaysMs[Math.min(attempt - 1, retry.delaysMs.length - 1)];
        this.log(delivery, 'warn', `failed on try ${attempt} of ${retry.attempts} (${failure.name}: ${failure.message}); retrying in ${delay} ms`);
        await this.copyTo(delivery, delay > 0 ? retryQueueName(this.definition, delay) : this.definition.queue, {
          [HEADER_ATTEMPTS]: attempt,
        });
      } else {
        this.log(delivery, 'error', `failed on try ${attempt} (${failure.name}: ${failure.message}); moved to ${deadLetterQueueName(this.definition)}`);
        await this.deadLetter(delivery, failure, attempt);
      }
      delivery.ack();
    } catch (publishError) {
      this.requeue(delivery, publishError);
    }
  }

  /**
   * A redelivered message had no outcome last time (its consumer died or lost its channel).
   * It goes back to the queue with a counter, and to the dead-letter queue once the counter
   * passes maxRedeliveries, so a message that kills every consumer cannot loop forever.
   */
  async redelivered(delivery: Delivery, attempt: number): Promise<void> {
    const headers = delivery.msg.properties.headers ?? {};
    const previous = Number(own(headers, HEADER_REDELIVERIES)) || 0;
    const count = previous + 1;
    try {
      if (count > this.options.maxRedeliveries) {
        const error = new DeliveryLimitError(`Delivered ${count} times without an outcome (maxRedeliveries ${this.options.maxRedeliveries})`);
        this.log(delivery, 'error', `${error.message}; moved to ${deadLetterQueueName(this.definition)}`);
        await this.deadLetter(delivery, error, attempt);
      } else {
        await this.copyTo(delivery, this.definition.queue, { [HEADER_REDELIVERIES]: count });
      }
      delivery.ack();
    } catch (error) {
      this.requeue(delivery, error);
    }
  }

  private async deadLetter(delivery: Delivery, error: Error, attempt: number): Promise<void> {
    const { fields } = delivery.msg;
    await this.copyTo(
      delivery,
      deadLetterQueueName(this.definition),
      {
        [HEADER_ERROR_NAME]: error.name,
        [HEADER_ERROR_MESSAGE]: truncate(error.message),
        [HEADER_ATTEMPTS]: attempt,
        [HEADER_ORIGINAL_QUEUE]: this.definition.baseQueue,
        'x-original-exchange': fields.exchange,
        'x-original-routing-key': fields.routingKey,
      },
      true,
    );
  }

  private async copyTo(delivery: Delivery, queue: string, headers: Record<string, unknown>, keepForever = false): Promise<void> {
    const original = delivery.msg.properties.headers ?? {};
    try {
      await this.publisher.publish(this.copy(delivery, queue, { ...original, ...headers }, keepForever));
    } catch (error) {
      if (!(error instanceof EncodeError)) throw error;
      // The original headers plus ours no longer fit in an AMQP table (64 KiB): the large entries
      // go, so the message still reaches its retry or dead-letter queue.
      const kept = compactHeaders(original);
      const dropped = Object.keys(original).length - Object.keys(kept).length;
      await this.publisher.publish(this.copy(delivery, queue, { ...kept, ...headers, 'x-headers-dropped': dropped }, keepForever));
    }
  }

  private copy(delivery: Delivery, queue: string, headers: Record<string, unknown>, keepForever: boolean): Outgoing {
    const { properties, content } = delivery.msg;
    return {
      exchange: '',
      routingKey: queue,
      content,
      properties: {
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

  private async reply(delivery: Delivery, result: unknown, error?: Error): Promise<void> {
    const { properties } = delivery.msg;
    const replyTo = properties.replyTo as string;
    const direct = replyTo.startsWith(DIRECT_REPLY_TO);
    const headers = this.track.addHeaders(
      error ? { [HEADER_REPLY_ERROR]: true, [HEADER_ERROR_NAME]: error.name, [HEADER_ERROR_MESSAGE]: truncate(error.message) } : {},
    );
    const message = {
      exchange: '',
      routingKey: replyTo,
      payload: error ? { name: error.name, message: truncate(error.message) } : result,
      properties: {
        messageId: randomUUID(),
        correlationId: properties.correlationId ?? properties.messageId,
        persistent: !direct && this.options.persistent,
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
    try {
      await this.publisher.publish(message);
    } catch (failure) {
      if (!(failure instanceof UnroutableError)) throw failure;
      // The work is done; doing it again would not make the reply queue exist.
      this.log(delivery, 'error', `reply dropped: ${failure.message}`);
    }
  }

  private requeue(delivery: Delivery, error: unknown): void {
    this.log(delivery, 'error', `outcome could not be recorded (${asError(error).message}); message returned to the queue`);
    delivery.requeue();
  }

  private log(delivery: Delivery, level: 'warn' | 'error', text: string): void {
    const id = delivery.msg.properties.messageId ?? '-';
    this.logger[level](`[${this.track.requestId ?? '-'}] ${this.definition.name} message ${id} ${text}`);
  }
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
