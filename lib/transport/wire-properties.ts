import type { MessageProperties, PublishProperties } from './transport.interface';

/**
 * The AMQP basic properties a publish goes out with (and arrives with): every key present, the
 * TTL as a string, `persistent` as delivery mode 2. One mapping for both transports, so a message
 * looks the same on RabbitMQ and in memory.
 */
export function wireProperties(p: PublishProperties, headers: Record<string, unknown> = p.headers ?? {}): MessageProperties {
  return {
    contentType: p.contentType,
    contentEncoding: p.contentEncoding,
    headers,
    deliveryMode: p.persistent !== undefined ? (p.persistent ? 2 : 1) : p.deliveryMode,
    priority: p.priority,
    correlationId: p.correlationId,
    replyTo: p.replyTo,
    expiration: p.expiration === undefined ? undefined : String(p.expiration),
    messageId: p.messageId,
    timestamp: p.timestamp,
    type: p.type,
    userId: p.userId,
    appId: p.appId,
    clusterId: undefined,
  };
}
