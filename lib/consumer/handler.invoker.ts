import { ContextIdFactory, type ModuleRef } from '@nestjs/core';
import type { Type } from '@nestjs/common';
import { isObservable, lastValueFrom } from 'rxjs';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { DiscoveredHandler } from './handler.explorer';

type Method = (payload: unknown, context: MessageContext) => unknown;

/**
 * Calls the user's method. Singletons are called directly (no DI work per message); a
 * request-scoped class gets a fresh instance tree per message, with the message context as the
 * "request" of that tree (injectable as REQUEST or MESSAGE_CONTEXT).
 */
export class HandlerInvoker {
  constructor(
    private readonly handler: DiscoveredHandler,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** The method's result: a value, or a promise (Observables become the promise of their last value). */
  invoke(payload: unknown, context: MessageContext): unknown {
    const { isStatic, wrapper, methodName } = this.handler;
    if (isStatic) {
      const instance = wrapper.instance as Record<string, Method>;
      return settle(instance[methodName](payload, context));
    }
    return this.resolve(context).then((instance) => settle(instance[methodName](payload, context)));
  }

  private async resolve(context: MessageContext): Promise<Record<string, Method>> {
    const contextId = ContextIdFactory.getByRequest(context);
    this.moduleRef.registerRequestByContextId(context, contextId);
    return this.moduleRef.resolve(this.handler.wrapper.metatype as Type<Record<string, Method>>, contextId, { strict: false });
  }
}

function settle(result: unknown): unknown {
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : result;
}
