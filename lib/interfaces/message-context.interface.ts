import type { ConsumeMessage } from 'amqplib';

/** What a handler knows about the message it handles; its second argument. */
export interface MessageContext {
  readonly queue: string;
  readonly exchange: string;
  readonly routingKey: string;
  readonly messageId?: string;
  readonly correlationId?: string;
  readonly replyTo?: string;
  readonly headers: Readonly<Record<string, unknown>>;
  /** 1 on the first try. */
  readonly attempt: number;
  readonly redelivered: boolean;
  /** Aborted when shutdown gives up waiting for this handler. */
  readonly signal: AbortSignal;
  readonly raw: ConsumeMessage;
}
