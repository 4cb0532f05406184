import { Inject, Injectable } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection.manager';
import {
  HEADER_ATTEMPTS,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ORIGINAL_QUEUE,
  HEADER_REDELIVERIES,
  MESSAGING_OPTIONS,
} from '../messaging.constants';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';

const DEAD_LETTER_HEADERS = [
  HEADER_ERROR_NAME,
  HEADER_ERROR_MESSAGE,
  HEADER_ATTEMPTS,
  HEADER_REDELIVERIES,
  HEADER_ORIGINAL_QUEUE,
  'x-original-exchange',
  'x-original-routing-key',
];

/** Puts dead-lettered messages back to work once their cause is fixed. */
@Injectable()
export class DeadLetters {
  constructor(
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
  ) {}

  /**
   * Moves up to `limit` messages from `<queue>.dlq` back to the queue they failed in, with their
   * tries counted afresh. Each is re-published with a confirm before it leaves the dead-letter
   * queue, so a failure midway duplicates at most one message and loses none. Returns how many moved.
   */
  async replay(queue: string, options: { limit?: number } = {}): Promise<number> {
    const limit = options.limit ?? Infinity;
    const channel = await this.connections.publisher.createChannel();
    let moved = 0;
    try {
      while (moved < limit) {
        const msg = await channel.get(`${queue}.dlq`, { noAck: false });
        if (!msg) break;
        const headers = { ...msg.properties.headers };
        const target = typeof headers[HEADER_ORIGINAL_QUEUE] === 'string' ? (headers[HEADER_ORIGINAL_QUEUE] as string) : queue;
        for (const name of DEAD_LETTER_HEADERS) delete headers[name];
        try {
          await this.publisher.publish(
            {
              exchange: '',
              routingKey: target,
              content: msg.content,
              properties: { ...msg.properties, headers, messageId: msg.properties.messageId ?? `replay-${Date.now()}-${moved}`, mandatory: true },
            },
            this.options.publishTimeoutMs,
          );
        } catch (error) {
          channel.nack(msg, false, true);
          throw error;
        }
        channel.ack(msg);
        moved++;
      }
    } finally {
      await channel.close().catch(() => undefined);
    }
    return moved;
  }
}
