import { Inject, Injectable } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import { MessagingError, QueueNotFoundError } from '../messaging.errors';
import { isNotFound } from '../transport/transport.errors';
import { MESSAGING_OPTIONS } from '../messaging.constants';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';

/** What a queue holds now, e.g. for autoscaling workers on queue depth. */
export interface QueueDepth {
  /** Messages ready for delivery (not those delivered and waiting for their ack). */
  messages: number;
  /** Consumers on the queue, across every instance. */
  consumers: number;
}

/** Questions an operator asks the broker. */
@Injectable()
export class MessagingAdmin {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: Pick<ResolvedMessagingOptions, 'queues'>,
  ) {}

  /**
   * Ready messages and consumers of `queue`, by a passive declare on a throwaway channel: the
   * queue is never created. A queue that does not exist: QueueNotFoundError. `name` is the name
   * handlers use: the `queues` rename map applies, as everywhere.
   */
  async queueDepth(name: string): Promise<QueueDepth> {
    const queue = renamed(this.options.queues, name);
    try {
      const { messageCount, consumerCount } = await this.connections.publisher.withChannel((channel) => channel.checkQueue(queue));
      return { messages: messageCount, consumers: consumerCount };
    } catch (error) {
      if (isNotFound(error)) throw new QueueNotFoundError(queue, error.reason);
      throw new MessagingError(`Cannot read the depth of queue "${queue}": ${(error as Error).message}`, { cause: error });
    }
  }
}
