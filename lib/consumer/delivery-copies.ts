import type { Logger } from '@nestjs/common';
import { BROKER_DEATH_HEADERS, HEADER_ORIGINAL_EXCHANGE, HEADER_ORIGINAL_ROUTING_KEY } from '../messaging.constants';
import { EncodeError, UnroutableError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Outgoing, Publisher } from '../publisher/publisher';
import { type Delivery, originOf } from './delivery';
import type { HandlerDefinition } from '../topology/handler-definition';

/** Declares a handler's topology again; the consumer of the handler's queue provides it. */
export type RedeclareTopology = () => Promise<void>;

export interface CopyOptions {
  /** Without the message's own expiration (a dead letter must not expire out of its queue). */
  keepForever?: boolean;
  /** With RabbitMQ's dead-lettering headers (`x-death` & co.). */
  keepDeaths?: boolean;
  /** A copy returned because its queue is gone makes the handler's topology be declared again. */
  redeclare?: boolean;
  timeoutMs?: number;
}

/**
 * Copies of a delivery into the handler's own queues (retry, dead-letter, back to its queue):
 * the original body and properties, the message's headers with ours on top, published mandatory
 * and confirmed. RabbitMQ's dead-lettering headers stay only on dead-letter copies: a copy that
 * carries them back into a queue it once died in is dropped by RabbitMQ's dead-letter cycle
 * check when it next passes a retry queue.
 */
export class DeliveryCopies {
  private redeclare?: RedeclareTopology;

  constructor(
    private readonly definition: HandlerDefinition,
    private readonly publisher: Publisher,
    private readonly options: Pick<ResolvedMessagingOptions, 'publishTimeoutMs'>,
    private readonly logger: Logger,
  ) {}

  /** Set once by the consumer: how a queue found missing is declared again. */
  useTopology(redeclare: RedeclareTopology): void {
    this.redeclare = redeclare;
  }

  /** Publishes a copy of the delivery for `queue`, with our `headers` added (an undefined one removes the message's). */
  async copyTo(
    delivery: Delivery,
    queue: string,
    headers: Record<string, unknown>,
    { keepForever = false, keepDeaths = false, redeclare = true, timeoutMs = this.options.publishTimeoutMs }: CopyOptions = {},
  ): Promise<void> {
    const original = keepDeaths ? (delivery.msg.properties.headers ?? {}) : withoutDeaths(delivery.msg.properties.headers ?? {});
    const origin = originOf(delivery.msg);
    // Merged first, then cleaned: an undefined entry of ours removes the original's header.
    const ours = { ...headers, [HEADER_ORIGINAL_EXCHANGE]: origin.exchange, [HEADER_ORIGINAL_ROUTING_KEY]: origin.routingKey };
    const send = (all: Record<string, unknown>) => this.send(() => this.copy(delivery, queue, all, keepForever), timeoutMs, redeclare);
    try {
      await send(withoutUndefined({ ...original, ...ours }));
    } catch (error) {
      if (!(error instanceof EncodeError)) throw error;
      // The original headers plus ours no longer fit in an AMQP table (64 KiB): the large entries
      // go, so the message still reaches its retry or dead-letter queue.
      const kept = compactHeaders(original);
      const dropped = Object.keys(original).length - Object.keys(kept).length;
      await send(withoutUndefined({ ...kept, ...ours, 'x-headers-dropped': dropped }));
    }
  }

  /**
   * Publishes a copy to one of the handler's own queues. When the broker returns it, that queue
   * is gone (an operator deleted it): the topology is declared again and the copy sent once more.
   */
  private async send(copy: () => Outgoing, timeoutMs: number, redeclare: boolean): Promise<void> {
    try {
      await this.publisher.publish(copy(), timeoutMs);
    } catch (error) {
      if (!(error instanceof UnroutableError) || !redeclare || !this.redeclare) throw error;
      this.logger.warn(`${this.definition.name}: ${error.message}; declaring its queues again`);
      await this.redeclare();
      await this.publisher.publish(copy(), timeoutMs);
    }
  }

  private copy(delivery: Delivery, queue: string, headers: Record<string, unknown>, keepForever: boolean): Outgoing {
    const { properties, content } = delivery.msg;
    return {
      exchange: '',
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
        messageId: delivery.id,
        timestamp: properties.timestamp,
        type: properties.type,
        appId: properties.appId,
        headers,
      },
    };
  }
}

function withoutDeaths(headers: Record<string, unknown>): Record<string, unknown> {
  if (!BROKER_DEATH_HEADERS.some((name) => Object.hasOwn(headers, name))) return headers;
  const kept = { ...headers };
  for (const name of BROKER_DEATH_HEADERS) delete kept[name];
  return kept;
}

function withoutUndefined(headers: Record<string, unknown>): Record<string, unknown> {
  for (const key of Object.keys(headers)) if (headers[key] === undefined) delete headers[key];
  return headers;
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
