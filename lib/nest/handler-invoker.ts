import { ContextIdFactory, type ModuleRef } from '@nestjs/core';
import type { Type } from '@nestjs/common';
import { isObservable, lastValueFrom } from 'rxjs';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { HandlerEnhancers } from './handler-enhancers';
import type { DiscoveredHandler } from './handler-explorer';
import type { HandlerPipeline, HandlerPipelines } from './handler-pipeline';

type Method = (payload: unknown, context: MessageContext) => unknown;

/**
 * Calls the user's method. A singleton without enhancers is called directly (no DI or pipeline
 * work per message); one with enhancers goes through a pipeline built once. A request-scoped
 * class (or one with request-scoped enhancers) gets a fresh instance tree per message, with the
 * message context as the "request" of that tree (injectable as REQUEST or MESSAGE_CONTEXT), and
 * its pipeline is built for that tree.
 */
export class HandlerInvoker {
  private readonly enhancers?: HandlerEnhancers;
  private readonly pipeline?: HandlerPipeline;
  /** A singleton's instance, taken once: the wrapper's getter looks it up by context id on every read. */
  private readonly instance?: Record<string, Method>;

  constructor(
    private readonly handler: DiscoveredHandler,
    private readonly moduleRef: ModuleRef,
    private readonly pipelines: HandlerPipelines,
  ) {
    this.enhancers = pipelines.enhancersOf(handler);
    if (handler.isStatic) this.instance = handler.wrapper.instance as Record<string, Method>;
    if (this.instance && this.enhancers) this.pipeline = pipelines.create(handler, this.instance, this.enhancers);
  }

  /** The method's result: a value, or a promise (Observables become the promise of their last value). */
  invoke(payload: unknown, context: MessageContext): unknown {
    if (this.pipeline) return this.pipeline(payload, context).then(settle);
    if (this.instance) return settle(this.instance[this.handler.methodName](payload, context));
    return this.invokeScoped(payload, context);
  }

  private async invokeScoped(payload: unknown, context: MessageContext): Promise<unknown> {
    const contextId = ContextIdFactory.getByRequest(context);
    this.moduleRef.registerRequestByContextId(context, contextId);
    const type = this.handler.wrapper.metatype as Type<Record<string, Method>>;
    const instance = await this.moduleRef.resolve(type, contextId, { strict: false });
    if (!this.enhancers) return settle(instance[this.handler.methodName](payload, context));
    return settle(await this.pipelines.create(this.handler, instance, this.enhancers, contextId)(payload, context));
  }
}

function settle(result: unknown): unknown {
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : result;
}
