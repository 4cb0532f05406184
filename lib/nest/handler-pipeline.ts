import { Injectable } from '@nestjs/common';
import { type ContextId, ExternalContextCreator, ModuleRef } from '@nestjs/core';
import type { MessageContext } from '../interfaces/message-context.interface';
import { enhancersOf, type HandlerEnhancers } from './handler-enhancers';
import type { DiscoveredHandler } from './handler-explorer';
import { messageContextCreator } from './message-context-creator';
import { MESSAGE_CONTEXT_TYPE } from './message-context-type';
import { MessageParamsFactory } from './message-params-factory';
import { applicationConfigOf, inquirerIdOf } from './nest-internals';
import { PipelineRefusals } from './pipeline-refusals';

/** One handler call through Nest: guards, interceptors, pipes, the method, exception filters. */
export type HandlerPipeline = (payload: unknown, context: MessageContext) => Promise<unknown>;

/**
 * Builds handler calls with Nest's ExternalContextCreator, as Nest's own transports do: global,
 * class and method enhancers apply, the call's arguments are `(payload, context)`
 * (`switchToRpc().getData()` / `.getContext()`), and what a guard or pipe refuses rejects with
 * MessageRejectedError.
 */
@Injectable()
export class HandlerPipelines {
  private readonly refusals = new PipelineRefusals();
  private readonly creator: ExternalContextCreator;
  private readonly params = new MessageParamsFactory();

  constructor(
    creator: ExternalContextCreator,
    private readonly moduleRef: ModuleRef,
  ) {
    this.creator = messageContextCreator(creator, this.refusals);
  }

  /** Undefined when Nest has nothing to do for the handler (it is then called directly). */
  enhancersOf(handler: DiscoveredHandler): HandlerEnhancers | undefined {
    return enhancersOf(handler.classRef, handler.methodName, applicationConfigOf(this.moduleRef));
  }

  /**
   * The pipeline of `instance`'s handler method: once at startup for a singleton, per message
   * (with the message's `contextId`) for a request-scoped handler or one with request-scoped enhancers.
   */
  create(handler: DiscoveredHandler, instance: object, enhancers: HandlerEnhancers, contextId?: ContextId): HandlerPipeline {
    const method = (instance as Record<string, (...args: unknown[]) => unknown>)[handler.methodName];
    const call = this.creator.create(
      instance,
      method,
      handler.methodName,
      enhancers.argsMetadataKey,
      this.params,
      contextId,
      inquirerIdOf(handler.wrapper),
      { guards: true, interceptors: true, filters: enhancers.filters },
      MESSAGE_CONTEXT_TYPE,
    );
    return (payload, context) =>
      call(payload, context).catch((error: unknown) => {
        throw this.refusals.explain(error);
      });
  }
}
