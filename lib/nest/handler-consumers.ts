import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import { DEFAULT_CONNECTION, MESSAGING_LOGGER, MESSAGING_OPTIONS } from '../messaging.constants';
import { ConnectionDirectory } from './connection-directory';
import { checkPrefetchedBytes, type ResolvedMessagingOptions } from '../messaging.options';
import { defineHandler, type HandlerDefinition } from '../topology/handler-definition';
import { queueDefinition } from '../consumer/queue-routes';
import { HandlerConsumerFactory } from './handler-consumer-factory';
import { type DiscoveredHandler, HandlerExplorer } from './handler-explorer';
import type { HandlerConsumer } from '../consumer/handler-consumer';
import { takeUnconsumedHandlerClasses } from '../decorators/handler-classes';

/** A message shutdown gave up waiting for, with the handler that still runs it. */
export interface AbandonedDelivery {
  handler: string;
  queue: string;
  messageId: string;
  /** Its handler had ended: shutdown gave up waiting for RabbitMQ to take its outcome (a copy or a reply). */
  held: boolean;
}

/** Every handler consumer of the app, as one: started, stopped, drained and closed together. */
@Injectable()
export class HandlerConsumers {
  private consumers: HandlerConsumer[] = [];
  /** Names this app instance's broadcast queues. */
  private readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly explorer: HandlerExplorer,
    private readonly directory: ConnectionDirectory,
    private readonly factory: HandlerConsumerFactory,
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {}

  /**
   * The app's handlers this connection consumes for: those that name it, or none for the default
   * one. Fails startup on a connection name given twice or a handler on an unknown connection.
   */
  handlers(): DiscoveredHandler[] {
    const { handlers: all, classes } = this.explorer.explore();
    this.directory.check(this.options.name, all);
    for (const classRef of takeUnconsumedHandlerClasses(classes)) this.logger.warn(unconsumedClassWarning(classRef));
    return all.filter((handler) => (handler.options.connection ?? DEFAULT_CONNECTION) === this.options.name);
  }

  get inFlight(): number {
    return this.consumers.reduce((sum, consumer) => sum + consumer.inFlightCount, 0);
  }

  /** Whether the broker delivers to every consumer now (false while one resumes after a loss). */
  get consuming(): boolean {
    return this.consumers.every((consumer) => consumer.isConsuming);
  }

  /** The handlers this app consumes for, once started. */
  get definitions(): HandlerDefinition[] {
    return this.consumers.map((consumer) => consumer.definition);
  }

  /**
   * Finds the handlers, declares their topology (or checks it, with `declare: false`) and starts
   * consuming, one consumer per queue; a refusal fails startup.
   */
  async start(): Promise<void> {
    const byQueue = new Map<string, HandlerGroup>();
    for (const handler of this.handlers()) {
      const definition = defineHandler(handler.name, handler.options, this.options, this.instanceId);
      const group = byQueue.get(definition.queue) ?? { handlers: [], definitions: [] };
      group.handlers.push(handler);
      group.definitions.push(definition);
      byQueue.set(definition.queue, group);
    }
    const groups = [...byQueue.values()].map((group) => ({ ...group, queue: queueDefinition(group.definitions) }));
    checkPrefetchedBytes(
      groups.map((group) => group.queue),
      this.options,
    );
    if (groups.length === 0) return;
    await this.connections.startConsumer();
    this.consumers = groups.map((group) => this.factory.create(group));
    await Promise.all(this.consumers.map((consumer) => consumer.start()));
    this.logger.log(`Consuming ${this.consumers.map((c) => `${c.definition.queue} (${c.definition.name})`).join(', ')}`);
  }

  /** No new messages (basic.cancel, confirmed or given up on at `deadline`); in-flight ones go on. */
  async stop(deadline: number): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.stop(deadline)));
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
        messageId: delivery.id,
        held: delivery.ended,
      })),
    );
  }

  /** Closes every consumer channel (their acks are flushed first). */
  async close(): Promise<void> {
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
  }
}

/** The handlers of one queue, with their definitions in the same order. */
interface HandlerGroup {
  handlers: DiscoveredHandler[];
  definitions: HandlerDefinition[];
}

/** A class with @MessageHandler methods that no module of the app lists: Nest never makes one, so nothing consumes for it. */
export function unconsumedClassWarning(classRef: object): string {
  const name = (classRef as { name?: string }).name || 'an anonymous class';
  return (
    `${name} has @MessageHandler methods, but no module of this application lists it as a provider or controller: ` +
    `nothing consumes for it. Add ${name} to the providers of a module the application imports ` +
    '(or ignore this if another application in this process has it)'
  );
}
