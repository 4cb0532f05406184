import {
  Inject,
  Injectable,
  type Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ModuleRef, ModulesContainer } from '@nestjs/core';
import { drainBeforeOtherModules } from './lifecycle-order';
import { within } from '../util/within';
import { ClsService } from 'nestjs-cls';
import { ConnectionManager } from '../connection/connection.manager';
import { TrackContext } from '../context/track-context';
import { MESSAGING_LOGGER, MESSAGING_OPTIONS } from '../messaging.constants';
import { MessagingConfigError, ShuttingDownError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { ReplyRouter } from '../rpc/reply-router';
import { defineHandler, type HandlerDefinition } from './handler-definition';
import { HandlerExplorer } from './handler.explorer';
import { HandlerInvoker } from './handler.invoker';
import { HandlerPipelines } from './handler-pipeline';
import { HandlerConsumer } from './handler.consumer';
import { MessageOutcome } from './message-outcome';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * Starts every handler when the app has bootstrapped and stops them first when it shuts down:
 * cancel all consumers, let in-flight handlers finish (while the app's other providers still
 * work), flush confirms, fail pending calls, then close channels before connections.
 */
@Injectable()
export class ConsumerOrchestrator implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private consumers: HandlerConsumer[] = [];
  private accepting = false;
  private draining?: Promise<void>;
  private closing?: Promise<void>;
  /** Names this app instance's broadcast queues. */
  private readonly instanceId = `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;

  constructor(
    private readonly explorer: HandlerExplorer,
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    private readonly router: ReplyRouter,
    private readonly track: TrackContext,
    private readonly cls: ClsService,
    private readonly moduleRef: ModuleRef,
    private readonly pipelines: HandlerPipelines,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
    modules: ModulesContainer,
  ) {
    drainBeforeOtherModules(modules, ConsumerOrchestrator);
  }

  /** Whether this instance takes work (false from the moment shutdown starts). */
  get isAccepting(): boolean {
    return this.accepting;
  }

  get inFlight(): number {
    return this.consumers.reduce((sum, consumer) => sum + consumer.inFlightCount, 0);
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      if (this.options.registerHandlers) await this.startHandlers();
      this.accepting = true;
    } catch (error) {
      await this.close();
      throw error;
    }
  }

  async onModuleDestroy(): Promise<void> {
    await this.drain();
  }

  async onApplicationShutdown(): Promise<void> {
    await this.close();
  }

  private async startHandlers(): Promise<void> {
    const definitions = this.explorer.explore().map((found) => ({
      found,
      definition: defineHandler(found.name, found.options, this.options, this.instanceId),
    }));
    assertUniqueQueues(definitions.map((d) => d.definition));
    if (definitions.length === 0) return;
    await this.connections.startConsumer();
    this.consumers = definitions.map(
      ({ found, definition }) =>
        new HandlerConsumer(
          definition,
          this.connections.consumer,
          new HandlerInvoker(found, this.moduleRef, this.pipelines),
          new MessageOutcome(definition, this.publisher, this.router, this.track, this.options, this.logger),
          this.cls,
          this.options,
          this.logger,
        ),
    );
    await Promise.all(this.consumers.map((consumer) => consumer.start()));
    this.logger.log(`Consuming ${this.consumers.map((c) => `${c.definition.queue} (${c.definition.name})`).join(', ')}`);
  }

  /** Idempotent: a second call (or a call during a reconnect) waits for the first. */
  drain(): Promise<void> {
    return (this.draining ??= this.stopAndDrain());
  }

  close(): Promise<void> {
    return (this.closing ??= this.drain().then(async () => {
      await Promise.all([this.publisher.close(), this.router.close()]);
      await this.connections.close();
    }));
  }

  private async stopAndDrain(): Promise<void> {
    this.accepting = false;
    const started = Date.now();
    const atStart = this.inFlight;
    await Promise.all(this.consumers.map((consumer) => consumer.stop()));
    const deadline = started + this.options.shutdownTimeoutMs;
    await Promise.all(this.consumers.map((consumer) => consumer.drain(deadline)));
    let returned = 0;
    for (const consumer of this.consumers) {
      for (const delivery of consumer.abandon()) {
        returned++;
        this.logger.warn(
          `Shutdown timeout (${this.options.shutdownTimeoutMs} ms): ${consumer.definition.name} still runs message ` +
            `${delivery.msg.properties.messageId ?? '-'}; its signal is aborted and the message returns to "${consumer.definition.queue}"`,
        );
      }
    }
    // Channels before the connection: their acks must reach the broker before the socket closes.
    await Promise.all(this.consumers.map((consumer) => consumer.close()));
    // Confirms of what was sent meanwhile, within the same deadline: a broker blocked by an alarm
    // confirms nothing, and the publisher's close then fails what is still unconfirmed.
    await within(this.publisher.whenIdle(), Math.max(0, deadline - Date.now()));
    this.router.failAll(() => new ShuttingDownError('The messaging module shut down before the reply arrived'));
    this.logger.log(
      `messaging:shutdown in-flight at start ${atStart}, finished ${atStart - returned}, returned to queue ${returned}, took ${Date.now() - started} ms`,
    );
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
