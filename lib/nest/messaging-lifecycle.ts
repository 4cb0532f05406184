import {
  Inject,
  Injectable,
  type Logger,
  type OnApplicationBootstrap,
  type OnApplicationShutdown,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { ConnectionManager } from '../connection/connection-manager';
import { HandlerConsumers } from './handler-consumers';
import { destroyFirstBootstrapLast } from './nest-internals';
import { MESSAGING_LOGGER, MESSAGING_OPTIONS, RPC_PUBLISHER } from '../messaging.constants';
import { ShuttingDownError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { ReplyRouter } from '../rpc/reply-router';
import { within } from '../util/within';

/**
 * The order of start and stop, in one place. Handlers start consuming once the whole app has
 * bootstrapped. Shutdown, first of all modules: cancel every consumer, let in-flight handlers
 * finish (while the app's other providers still work), give up on what outlives the timeout,
 * close consumer channels (flushing their acks), wait for the confirms of what was sent
 * meanwhile, fail pending calls; then, at application shutdown, close the publishers and the
 * connections. Every wait for the broker is bounded: on a stalled socket close() takes at most
 * shutdownTimeoutMs + 2 s (consumer channels) + 2 s (publisher channels) + 3 s (connections).
 */
@Injectable()
export class MessagingLifecycle implements OnApplicationBootstrap, OnModuleDestroy, OnApplicationShutdown {
  private accepting = false;
  private draining?: Promise<void>;
  private closing?: Promise<void>;

  constructor(
    private readonly consumers: HandlerConsumers,
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    @Inject(RPC_PUBLISHER) private readonly requests: Publisher,
    private readonly router: ReplyRouter,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
    modules: ModulesContainer,
  ) {
    destroyFirstBootstrapLast(modules, MessagingLifecycle);
  }

  /** Whether this instance takes work (false from the moment shutdown starts). */
  get isAccepting(): boolean {
    return this.accepting;
  }

  /** From the first moment of shutdown on. */
  get isShuttingDown(): boolean {
    return this.draining !== undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      if (this.options.registerHandlers) await this.consumers.start();
      // Consuming nothing, its connection names are still checked (a second unnamed forRoot).
      else this.consumers.handlers();
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

  /** Idempotent: a second call (or a call during a reconnect) waits for the first. */
  drain(): Promise<void> {
    return (this.draining ??= this.stopAndDrain());
  }

  close(): Promise<void> {
    return (this.closing ??= this.drain().then(async () => {
      // Channels before their connection: amqplib leaves a channel's close unanswered when its
      // connection closes first.
      await Promise.all([this.publisher.close(), this.requests.close()]);
      await this.connections.close();
    }));
  }

  private async stopAndDrain(): Promise<void> {
    this.accepting = false;
    const started = Date.now();
    const atStart = this.consumers.inFlight;
    // One deadline for the cancel and the drain: on a stalled socket the cancel is never confirmed.
    const deadline = started + this.options.shutdownTimeoutMs;
    await this.consumers.stop(deadline);
    await this.consumers.drain(deadline);
    const abandoned = this.consumers.abandon();
    for (const { handler, queue, messageId, held } of abandoned) {
      const what = held
        ? `${handler} message ${messageId} still waits for RabbitMQ to take its outcome (its retry, dead-letter or reply copy); the message returns to "${queue}" unchanged`
        : `${handler} still runs message ${messageId}; its signal is aborted and the message returns to "${queue}"`;
      this.logger.warn(`Shutdown timeout (${this.options.shutdownTimeoutMs} ms): ${what}`);
    }
    // Channels before the connection: their acks must reach the broker before the socket closes.
    await this.consumers.close();
    // Confirms of what was sent meanwhile, within the same deadline: a broker blocked by an alarm
    // confirms nothing, and the publisher's close then fails what is still unconfirmed.
    await within(this.publisher.whenIdle(), Math.max(0, deadline - Date.now()));
    this.router.failAll(() => new ShuttingDownError('The messaging module shut down before the reply arrived'));
    this.logger.log(
      `messaging:shutdown in-flight at start ${atStart}, finished ${atStart - abandoned.length}, returned to queue ${abandoned.length}, took ${Date.now() - started} ms`,
    );
  }
}
