import type { ExternalContextCreator } from '@nestjs/core';
import type { MessageContext } from '../interfaces/message-context.interface';
import { AmqpArgumentsHost } from './amqp-arguments-host';
import { type ApplyFilters, type HandlerCall, interceptGuardsAndPipes, replaceErrorProxy } from './nest-internals';
import type { PipelineRefusals } from './pipeline-refusals';

/**
 * Nest's ExternalContextCreator, seen through an object of our own (the shared one, which other
 * libraries use too, is left untouched) that:
 * - records what guards and pipes refuse;
 * - applies exception filters without Nest's fallback, which logs every error no filter caught:
 *   a failure goes on to the retry policy and is logged there once, with the request id. Should a
 *   Nest version not let that fallback be replaced, it stays in place (failures are then logged
 *   twice, nothing else changes).
 */
export function messageContextCreator(creator: ExternalContextCreator, refusals: PipelineRefusals): ExternalContextCreator {
  const view = interceptGuardsAndPipes(creator, refusals);
  replaceErrorProxy(view, withFilters);
  return view;
}

/** Like Nest's: a filter's truthy result is the outcome; otherwise the error goes on. */
function withFilters(target: HandlerCall, applyFilters: ApplyFilters): HandlerCall {
  return async (...args: unknown[]) => {
    try {
      return await target(...args);
    } catch (error) {
      const handled = applyFilters(error, new AmqpArgumentsHost(args as [unknown, MessageContext]));
      if (handled) return handled;
      throw error;
    }
  };
}
