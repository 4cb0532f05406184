import { Inject, Injectable } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import type { RetryPolicy } from '../interfaces/messaging-options.interface';
import { InvalidArgumentError, MessagingError, QueueNotFoundError } from '../messaging.errors';
import { HandlerConsumers } from '../nest/handler-consumers';
import { type OutcomeCounts, OutcomeCounters } from '../telemetry/outcome-counters';
import { deadLetterQueueName, policyDelays, removedHandlerQueues } from '../topology/handler-definition';
import { isNotFound, isPreconditionFailed } from '../transport/transport.errors';
import { MESSAGING_OPTIONS } from '../messaging.constants';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';

/** What a queue holds now, e.g. for autoscaling workers on queue depth. */
export interface QueueDepth {
  /** Messages ready for delivery (not those delivered and waiting for their ack). */
  messages: number;
  /** Consumers on the queue, across every instance. */
  consumers: number;
}

/** A queue this instance consumes, with the handlers that take its messages. */
export interface HandlerSummary {
  /** `Class.method` of each handler of the queue, comma-separated, as in the logs. */
  name: string;
  /** The queue consumed (a broadcast handler's is this instance's own). */
  queue: string;
  /** Where its messages go when they fail for good; DeadLetters takes `baseQueue` to browse it. */
  deadLetterQueue: string;
  /** The name the handler's queues are named after: `queue`, but for a broadcast handler's per-instance queue. */
  baseQueue: string;
  queueType: 'classic' | 'quorum';
  broadcast: boolean;
  prefetch: number;
  retry: Required<RetryPolicy> | false;
  /**
   * Deliveries this instance settled since it started, by outcome (`acked` is handled); undefined
   * unless a plug-in asked for them (the console does), since counting is off by default.
   */
  outcomes?: OutcomeCounts;
}

/** What `deleteHandlerQueues` did with each queue of a handler that no longer exists. */
export interface DeletedHandlerQueues {
  deleted: string[];
  /** Not there: never declared, or deleted before. */
  absent: string[];
  /** Kept, nothing lost: it holds ready messages (`not empty`) or has consumers (`in use`). Replay or move them, then call again. */
  kept: Array<{ queue: string; reason: 'not empty' | 'in use' }>;
}

/** Questions an operator asks the broker. */
@Injectable()
export class MessagingAdmin {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: Pick<ResolvedMessagingOptions, 'queues' | 'retry'>,
    private readonly consumers: HandlerConsumers,
    private readonly counters: OutcomeCounters,
  ) {}

  /** The queues this instance consumes once started (none before, nor with `registerHandlers: false`), in the order they started. */
  handlers(): HandlerSummary[] {
    return this.consumers.definitions.map((definition) => ({
      name: definition.name,
      queue: definition.queue,
      deadLetterQueue: deadLetterQueueName(definition),
      baseQueue: definition.baseQueue,
      queueType: definition.queueArguments['x-queue-type'] === 'quorum' ? 'quorum' : 'classic',
      broadcast: definition.broadcast,
      prefetch: definition.prefetch,
      retry: definition.retry,
      outcomes: this.counters.of(definition.queue),
    }));
  }

  /**
   * Ready messages and consumers of `queue`, by a passive declare on a throwaway channel: the
   * queue is never created. A queue that does not exist: QueueNotFoundError. `name` is the name
   * handlers use: the `queues` rename map applies, as everywhere.
   */
  queueDepth(name: string): Promise<QueueDepth> {
    return this.depthOf(renamed(this.options.queues, name));
  }

  /** queueDepth of a queue named as on the broker (the rename map applied already). */
  private async depthOf(queue: string): Promise<QueueDepth> {
    try {
      const { messageCount, consumerCount } = await this.connections.publisher.withChannel((channel) => channel.checkQueue(queue));
      return { messages: messageCount, consumers: consumerCount };
    } catch (error) {
      if (isNotFound(error)) throw new QueueNotFoundError(queue, error.reason);
      throw new MessagingError(`Cannot read the depth of queue "${queue}": ${(error as Error).message}`, { cause: error });
    }
  }

  /**
   * Deletes the queues the module declared for a handler that no longer exists: `<queue>`'s retry
   * queues (one per delay of `retryDelaysMs`, by default the module's retry policy's), `<queue>`
   * and `<queue>.dlq`. Only empty, unconsumed queues go, checked by the broker in the same step
   * as the delete; the others are kept and listed. A queue this app consumes is refused
   * (InvalidArgumentError): nothing is deleted.
   */
  async deleteHandlerQueues(name: string, options: { retryDelaysMs?: number[] } = {}): Promise<DeletedHandlerQueues> {
    const queue = renamed(this.options.queues, name);
    const consumer = this.consumers.definitions.find((definition) => definition.baseQueue === queue);
    if (consumer) {
      throw new InvalidArgumentError(
        'deleteHandlerQueues(name)',
        `the queue of a handler that no longer exists, not one ${consumer.name} consumes in this application`,
        queue,
      );
    }
    const delays = options.retryDelaysMs ?? policyDelays(this.options.retry);
    if (!Array.isArray(delays) || delays.some((d) => !Number.isInteger(d) || d < 0 || d > 2 ** 31 - 1)) {
      throw new InvalidArgumentError('retryDelaysMs', 'an array of whole milliseconds from 0 to 2^31 - 1', JSON.stringify(delays));
    }
    const done: DeletedHandlerQueues = { deleted: [], absent: [], kept: [] };
    for (const each of removedHandlerQueues(queue, delays)) {
      const found = await this.depthOrAbsent(each);
      if (!found) {
        done.absent.push(each);
        continue;
      }
      try {
        await this.connections.publisher.withChannel((channel) => channel.deleteQueue(each, { ifEmpty: true, ifUnused: true }));
        done.deleted.push(each);
      } catch (error) {
        if (!isPreconditionFailed(error))
          throw new MessagingError(`Cannot delete queue "${each}": ${(error as Error).message}`, { cause: error });
        const now = await this.depthOrAbsent(each);
        done.kept.push({ queue: each, reason: now && now.consumers > 0 ? 'in use' : 'not empty' });
      }
    }
    return done;
  }

  private async depthOrAbsent(queue: string): Promise<QueueDepth | undefined> {
    try {
      return await this.depthOf(queue);
    } catch (error) {
      if (error instanceof QueueNotFoundError) return undefined;
      throw error;
    }
  }
}
