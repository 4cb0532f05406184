import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ClsService } from 'nestjs-cls';
import { ConnectionManager } from '../connection/connection-manager';
import { TrackContext } from '../context/track-context';
import { IDEMPOTENCY_STORE, MESSAGING_LOGGER, MESSAGING_OPTIONS, TELEMETRY } from '../messaging.constants';
import { CodecRegistry } from '../codec/codec-registry';
import type { Telemetry } from '../telemetry/telemetry.interface';
import type { IdempotencyStore } from '../interfaces/idempotency-store.interface';
import { IdempotencyGuard } from '../consumer/idempotency-guard';
import { SettleByResult } from '../consumer/delivery-step';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { ReplyRouter } from '../rpc/reply-router';
import type { HandlerDefinition } from '../topology/handler-definition';
import type { DiscoveredHandler } from './handler-explorer';
import { HandlerConsumer } from '../consumer/handler-consumer';
import { HandlerInvoker } from './handler-invoker';
import { HandlerPipelines } from './handler-pipeline';
import { MessageOutcome } from '../consumer/message-outcome';
import { type Invoker, needsRouting, QueueRoutes } from '../consumer/queue-routes';
import { BatchCollector } from '../consumer/batch-collector';
import { AdhocRetryQueues } from '../topology/adhoc-retry-queues';

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
    private readonly codecs: CodecRegistry,
    @Inject(TELEMETRY) private readonly telemetry: Telemetry,
    @Inject(IDEMPOTENCY_STORE) private readonly store: IdempotencyStore,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
  ) {}

  /** The consumer of one queue: `queue` is its definition, `handlers` the handlers sharing it. */
  create(group: { queue: HandlerDefinition; handlers: DiscoveredHandler[]; definitions: HandlerDefinition[] }): HandlerConsumer {
    const { queue, handlers, definitions } = group;
    const invokers = handlers.map((handler, i): Invoker => {
      const invoker = new HandlerInvoker(handler, this.moduleRef, this.pipelines);
      const { batch } = definitions[i];
      return batch ? new BatchCollector(invoker, batch.size, batch.timeoutMs, this.cls, this.options.track) : invoker;
    });
    const invoker = needsRouting(definitions)
      ? new QueueRoutes(
          queue.queue,
          definitions.map((definition, i) => ({ definition, invoker: invokers[i] })),
        )
      : invokers[0];
    const outcome = new MessageOutcome(
      queue,
      this.publisher,
      this.router,
      new AdhocRetryQueues(queue, this.connections.consumer),
      this.track,
      this.options,
      this.logger,
    );
    const { options, codecs, telemetry, logger } = this;
    const settle = new SettleByResult(outcome);
    const step = queue.idempotent
      ? new IdempotencyGuard(queue, settle, outcome, options.idempotency, options.reconnect, this.store, codecs, telemetry, logger)
      : settle;
    return new HandlerConsumer(queue, this.connections.consumer, invoker, outcome, this.cls, options, codecs, telemetry, logger, step);
  }
}
