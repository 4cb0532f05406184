import { wireProperties } from '../wire-properties';
import type { Message, MessageProperties, PublishProperties } from '../transport.interface';
import { copyTable, wireCopy } from './field-table';

/** A message as published: shared by every queue it reached, never changed. */
export interface Envelope {
  readonly content: Buffer;
  readonly properties: MessageProperties;
  readonly exchange: string;
  readonly routingKey: string;
}

/** One queue's copy of a message. */
export interface QueuedMessage {
  readonly envelope: Envelope;
  redelivered: boolean;
  /** When it expires in this queue (the queue's TTL or its own expiration, whichever is first). */
  readonly expiresAt: number | undefined;
  /** Times it went back to the queue after a delivery (a quorum queue's delivery count). */
  returns: number;
}

/** Properties as they would arrive: the same shape amqplib's wire writer sends. */
export function publishedProperties(p: PublishProperties): MessageProperties {
  return wireProperties(p, wireCopy(p.headers ?? {}));
}

/** The per-message TTL in ms, when it has a valid one. */
export function messageTtl(properties: MessageProperties): number | undefined {
  const { expiration } = properties;
  return expiration !== undefined && /^\d+$/.test(expiration) ? Number(expiration) : undefined;
}

/** A delivery's own copy (content and headers), as a consumer of a real broker gets one. */
export function delivered(
  envelope: Envelope,
  fields: { deliveryTag: number; redelivered: boolean; consumerTag: string; messageCount?: number },
  extraHeaders?: Record<string, unknown>,
): Message {
  const headers = envelope.properties.headers && copyTable({ ...envelope.properties.headers, ...extraHeaders });
  return {
    content: Buffer.from(envelope.content),
    fields: { ...fields, exchange: envelope.exchange, routingKey: envelope.routingKey },
    properties: { ...envelope.properties, headers },
  };
}
