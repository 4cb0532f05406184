import type { ArgumentsHost } from '@nestjs/common';
import type { ExternalContextCreator } from '@nestjs/core';
import type { MessageContext } from '../interfaces/message-context.interface';
import { AmqpArgumentsHost } from './amqp-arguments-host';
import type { PipelineRefusals } from './pipeline-refusals';

type GuardsFn = (...args: unknown[]) => Promise<void>;
type Target = (...args: unknown[]) => Promise<unknown>;
interface ExceptionsHandler {
  invokeCustomFilters(exception: unknown, host: ArgumentsHost): unknown;
}

/**
 * Nest's ExternalContextCreator, seen through an object of our own (the shared one, which other
 * libraries use too, is left untouched) that:
 * - records what guards and pipes refuse (their hooks are public methods of the creator);
 * - applies exception filters without Nest's fallback, which logs every error no filter caught:
 *   a failure goes on to the retry policy and is logged there once, with the request id. That
 *   fallback sits behind the creator's `externalErrorProxy`; should a Nest version name it
 *   otherwise, Nest's own proxy stays in place (failures are then logged twice, nothing else changes).
 */
export function messageContextCreator(creator: ExternalContextCreator, refusals: PipelineRefusals): ExternalContextCreator {
  const view = Object.create(creator) as ExternalContextCreator;
  view.createGuardsFn = function (this: ExternalContextCreator, ...args: Parameters<ExternalContextCreator['createGuardsFn']>) {
    const canActivate = creator.createGuardsFn.apply(this, args) as GuardsFn | null;
    if (!canActivate) return null;
    return async (...guardArgs: unknown[]) => {
      try {
        await canActivate(...guardArgs);
      } catch (error) {
        throw refusals.fromGuard(error);
      }
    };
  };
  view.getParamValue = async function (this: ExternalContextCreator, ...args: Parameters<ExternalContextCreator['getParamValue']>) {
    try {
      return await creator.getParamValue.apply(this, args);
    } catch (error) {
      throw refusals.fromPipe(error);
    }
  };
  const internals = view as unknown as { externalErrorProxy?: unknown };
  if (internals.externalErrorProxy) internals.externalErrorProxy = { createProxy: withFilters };
  return view;
}

/** Like Nest's: a filter's truthy result is the outcome; otherwise the error goes on. */
function withFilters(target: Target, exceptionsHandler: ExceptionsHandler): Target {
  return async (...args: unknown[]) => {
    try {
      return await target(...args);
    } catch (error) {
      const handled = exceptionsHandler.invokeCustomFilters(error, new AmqpArgumentsHost(args as [unknown, MessageContext]));
      if (handled) return handled;
      throw error;
    }
  };
}
