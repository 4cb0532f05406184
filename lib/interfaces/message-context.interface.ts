import type { ConsumeMessage } from 'amqplib';

/** An incoming CloudEvent's context attributes. */
export type CloudEventAttributes = Readonly<Record<string, unknown>>;

/** What a handler knows about the message it handles; its second argument. */
export interface MessageContext {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  /**
   * The producer's message id; for a message sent without one (this module always sets one), an
   * id the module made for this delivery, which its retry and dead-letter copies keep. A made-up id
   * is not the same on a redelivery, so an idempotent handler cannot recognise a redelivered
   * id-less message (it runs again, as at-least-once allows).
   */
  readonly messageId: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly headers: Readonly<Record<string, unknown>>;
  /** 1 on the first try. */
  readonly attempt: number;
  readonly redelivered: boolean;
  /** Aborted when shutdown gives up waiting for this handler. */
  readonly signal: AbortSignal;
  /** For a handler with `format: 'nest-rmq'`: the message's Nest pattern, as Nest routes it (an object pattern as sorted JSON). */
  readonly pattern?: string;
  /**
   * The context attributes of a message that is a CloudEvent (`specversion`, `id`, `source`,
   * `type`, `time`, extensions), from `cloudEvents:*` (or `cloudEvents_*`) headers in binary mode or
   * from the body in structured mode (`application/cloudevents+json`, whose `data` is the payload);
   * undefined for any other message.
   */
  readonly cloudEvent?: CloudEventAttributes;
  readonly raw: ConsumeMessage;
  /**
   * Settles the message now, whatever the handler then returns or throws (a second call throws
   * SettlementError; no reply is sent for a request settled this way). Each resolves once the
   * outcome is recorded; none rejects (an outcome that cannot be recorded puts the message back).
   */
  ack(): Promise<void>;
  /** Back to its queue (`requeue`, the default), or dropped (`requeue: false`; `deadLetter` keeps it instead). */
  nack(options?: { requeue?: boolean }): Promise<void>;
  /** Tried again after `delayMs` (default: the retry policy's delay for this try), `attempt` one higher; the policy's limit does not apply. */
  retry(options?: { delayMs?: number }): Promise<void>;
  /** To the dead-letter queue now, with `reason` as its x-error-message. */
  deadLetter(reason?: string): Promise<void>;
}

/** How a handler settled its message itself. */
export type Settlement =
  { kind: 'ack' } | { kind: 'nack'; requeue: boolean } | { kind: 'retry'; delayMs?: number } | { kind: 'deadLetter'; reason?: string };
