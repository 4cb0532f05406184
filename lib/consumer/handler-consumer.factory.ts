import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ClsService } from 'nestjs-cls';
import { ConnectionManager } from '../connection/connection.manager';
import { TrackContext } from '../context/track-context';
import { MESSAGING_LOGGER, MESSAGING_OPTIONS } from '../messaging.constants';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { ReplyRouter } from '../rpc/reply-router';
import type { HandlerDefinition } from './handler-definition';
import type { DiscoveredHandler } from './handler.explorer';
import { HandlerConsumer } from './handler.consumer';
import { HandlerInvoker } from './handler.invoker';
import { HandlerPipelines } from './handler-pipeline';
import { MessageOutcome } from './message-outcome';

/**
 * Makes the consumer of one handler with its parts (invoker, outcome): the one place that knows
 * how they fit together, and a provider a test can override.
 */
@Injectable()
export class HandlerConsumerFactory {
  constructor(
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    private readonly router: ReplyRouter,
    private readonly track: TrackContext,
    private readonly cls: ClsService,
    private readonly moduleRef: ModuleRef,
    private readonly pipelines: HandlerPipelines,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {}

  create(handler: DiscoveredHandler, definition: HandlerDefinition): HandlerConsumer {
    return new HandlerConsumer(
      definition,
      this.connections.consumer,
      new HandlerInvoker(handler, this.moduleRef, this.pipelines),
      new MessageOutcome(definition, this.publisher, this.router, this.track, this.options, this.logger),
      this.cls,
      this.options,
      this.logger,
    );
  }
}
