import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection.manager';
import { MESSAGING_LOGGER, MESSAGING_OPTIONS } from '../messaging.constants';
import { MessagingConfigError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { defineHandler, type HandlerDefinition } from './handler-definition';
import { HandlerConsumerFactory } from './handler-consumer.factory';
import { HandlerExplorer } from './handler.explorer';
import type { HandlerConsumer } from './handler.consumer';

/** A message shutdown gave up waiting for, with the handler that still runs it. */
export interface AbandonedDelivery {
  handler: string;
  queue: string;
  messageId?: string;
}

/** Every handler consumer of the app, as one: started, stopped, drained and closed together. */
@Injectable()
export class HandlerConsumers {
  private consumers: HandlerConsumer[] = [];
  /** Names this app instance's broadcast queues. */
  private readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly explorer: HandlerExplorer,
    private readonly factory: HandlerConsumerFactory,
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {}

  get inFlight(): number {
    return this.consumers.reduce((sum, consumer) => sum + consumer.inFlightCount, 0);
  }

  /** The handlers this app consumes for, once started. */
  get definitions(): HandlerDefinition[] {
    return this.consumers.map((consumer) => consumer.definition);
  }

  /** Finds the handlers, declares their topology and starts consuming; a refusal fails startup. */
  async start(): Promise<void> {
    const found = this.explorer.explore().map((handler) => ({
      handler,
      definition: defineHandler(handler.name, handler.options, this.options, this.instanceId),
    }));
    assertUniqueQueues(found.map((d) => d.definition));
    if (found.length === 0) return;
    await this.connections.startConsumer();
    this.consumers = found.map(({ handler, definition }) => this.factory.create(handler, definition));
    await Promise.all(this.consumers.map((consumer) => consumer.start()));
    this.logger.log(`Consuming ${this.consumers.map((c) => `${c.definition.queue} (${c.definition.name})`).join(', ')}`);
  }

  /** No new messages (basic.cancel, confirmed); in-flight ones go on. */
  async stop(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.stop()));
  }

  /** Resolves when nothing is in flight or at the deadline. */
  async drain(deadline: number): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.drain(deadline)));
  }

  /** Gives up on what still runs (its signal aborts; the message goes back to its queue on close). */
  abandon(): AbandonedDelivery[] {
    return this.consumers.flatMap((consumer) =>
      consumer.abandon().map((delivery) => ({
        handler: consumer.definition.name,
        queue: consumer.definition.queue,
        messageId: delivery.msg.properties.messageId,
      })),
    );
  }

  /** Closes every consumer channel (their acks are flushed first). */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
  }
}

function assertUniqueQueues(definitions: HandlerDefinition[]): void {
  const byQueue = new Map<string, string>();
  for (const { queue, name } of definitions) {
    const other = byQueue.get(queue);
    if (other) {
      throw new MessagingConfigError(`Queue "${queue}" has two handlers, ${other} and ${name}: one queue, one handler per app`);
    }
    byQueue.set(queue, name);
  }
}
