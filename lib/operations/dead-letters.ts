import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import {
  BROKER_DEATH_HEADERS,
  HEADER_ATTEMPTS,
  HEADER_COUNTERS_CHECK,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_ROUTING_KEY,
  HEADER_REDELIVERIES,
  MESSAGING_LOGGER,
  MESSAGING_OPTIONS,
} from '../messaging.constants';
import { MessagingError, QueueNotFoundError, UnroutableError } from '../messaging.errors';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { isNotFound } from '../transport/transport.errors';
import type { Message, TransportChannel } from '../transport/transport.interface';

/**
 * Left out of a replayed message: it starts afresh. RabbitMQ's own dead-lettering headers too: a
 * message RabbitMQ dead-lettered out of its queue (a delivery limit, a policy) and sent back there
 * with its `x-death` would be dropped by RabbitMQ's dead-letter cycle check on its first retry.
 */
const DEAD_LETTER_HEADERS = [
  ...BROKER_DEATH_HEADERS,
  HEADER_COUNTERS_CHECK,
  HEADER_ERROR_NAME,
  HEADER_ERROR_MESSAGE,
  HEADER_ATTEMPTS,
  HEADER_REDELIVERIES,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_ROUTING_KEY,
];

/** Puts dead-lettered messages back to work once their cause is fixed. */
@Injectable()
export class DeadLetters {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * Moves up to `limit` messages from `<queue>.dlq` back to the queue they failed in, with their
   * tries counted afresh. Each is re-published with a confirm before it leaves the dead-letter
   * queue, so a failure midway duplicates at most one message and loses none. Only the messages
   * there when the replay starts are taken: one that fails again comes back behind them and waits
   * for the next replay. A message whose queue no longer exists (e.g. a broadcast handler's) stays
   * where it is, and a warning counts them. Returns how many moved.
   */
  async replay(name: string, options: { limit?: number } = {}): Promise<number> {
    const queue = renamed(this.options.queues, name);
    const limit = options.limit ?? Infinity;
    const dlq = `${queue}.dlq`;
    const skipped: Message[] = [];
    const missingQueues = new Set<string>();
    let moved = 0;
    await this.connections.publisher.withChannel(async (channel) => {
      try {
        for (let left = await countMessages(channel, queue, dlq); left > 0 && moved < limit; left--) {
          const msg = await channel.get(dlq, { noAck: false });
          if (!msg) break;
          // Only where the module put it: the queue this dead-letter queue belongs to. A header
          // naming another (x-original-queue) can be written by any producer.
          const target = queue;
          try {
            await this.republish(msg, target);
          } catch (error) {
            if (error instanceof UnroutableError) {
              // Held unacked until the end, so the next get takes the message behind it.
              skipped.push(msg);
              missingQueues.add(target);
              continue;
            }
            channel.nack(msg, false, true);
            throw error;
          }
          channel.ack(msg);
          moved++;
        }
      } finally {
        returnToQueue(channel, skipped);
      }
    });
    if (skipped.length > 0) {
      this.logger.warn(
        `Replay of "${queue}": ${skipped.length} messages left in "${dlq}": their queue ` +
          `${[...missingQueues].map((name) => `"${name}"`).join(', ')} does not exist`,
      );
    }
    return moved;
  }

  private republish(msg: Message, target: string): Promise<string> {
    const headers = { ...msg.properties.headers };
    for (const name of DEAD_LETTER_HEADERS) delete headers[name];
    return this.publisher.publish(
      {
        exchange: '',
        routingKey: target,
        content: msg.content,
        properties: { ...msg.properties, headers, messageId: msg.properties.messageId ?? `replay-${randomUUID()}`, mandatory: true },
      },
      this.options.publishTimeoutMs,
    );
  }
}

/** Messages ready in the dead-letter queue now; a QueueNotFoundError naming it when there is none. */
async function countMessages(channel: TransportChannel, queue: string, dlq: string): Promise<number> {
  try {
    return (await channel.checkQueue(dlq)).messageCount;
  } catch (error) {
    if (isNotFound(error)) {
      throw new QueueNotFoundError(dlq, `there is nothing to replay for "${queue}" (${error.reason})`);
    }
    throw new MessagingError(`Cannot read the dead-letter queue "${dlq}": ${(error as Error).message}`, { cause: error });
  }
}

/** Back to their places in the dead-letter queue, in order (if the channel is gone, the broker did it). */
function returnToQueue(channel: TransportChannel, messages: Message[]): void {
  try {
    for (const msg of messages) channel.nack(msg, false, true);
  } catch {
    // The channel closed: the broker returned every unacked message itself.
  }
}
