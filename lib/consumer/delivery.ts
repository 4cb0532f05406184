import type * as amqp from 'amqplib';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { AckBatcher } from './ack-batcher';

/** One message being handled; it is settled through the acks of the channel it came from. */
export class Delivery {
  /** Shutdown gave up on it: the message goes back to the queue, so nothing may settle it. */
  abandoned = false;
  acked = false;
  private controller?: AbortController;

  constructor(
    readonly msg: amqp.ConsumeMessage,
    private readonly acks: AckBatcher,
  ) {}

  /** The handler's abort signal, created on first use (an AbortController per message is not free). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abandoned) this.controller.abort();
    }
    return this.controller.signal;
  }

  ack(): void {
    this.acks.ack(this);
  }

  /** Back to the queue, e.g. when its outcome could not be recorded. */
  requeue(): void {
    this.acks.nack(this, true);
  }

  abandon(reason: Error): void {
    this.abandoned = true;
    this.controller?.abort(reason);
  }
}

/** What the handler sees of a delivery (and, for request-scoped providers, the request). */
export class DeliveryContext implements MessageContext {
  readonly exchange: string;
  readonly routingKey: string;
  readonly messageId?: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly redelivered: boolean;
  readonly raw: amqp.ConsumeMessage;
  // A true private field: not enumerable, so logging or serializing the context stays safe.
  readonly #delivery: Delivery;

  constructor(
    readonly queue: string,
    delivery: Delivery,
    readonly headers: Readonly<Record<string, unknown>>,
    readonly attempt: number,
  ) {
    this.#delivery = delivery;
    const { fields, properties } = delivery.msg;
    this.exchange = fields.exchange;
    this.routingKey = fields.routingKey;
    this.messageId = properties.messageId;
    this.correlationId = properties.correlationId;
    this.replyTo = properties.replyTo;
    this.redelivered = fields.redelivered;
    this.raw = delivery.msg;
  }

  get signal(): AbortSignal {
    return this.#delivery.signal;
  }
}
