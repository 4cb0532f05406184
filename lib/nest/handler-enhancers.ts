import type { ApplicationConfig } from '@nestjs/core';
import { CONVENTIONAL_ARGS_METADATA } from '../decorators/message-param';
import { declaredEnhancers, type EnhancerKind, hasRouteArgs, ROUTE_ARGS_KEY } from './nest-internals';

/** What Nest's pipeline has to do for one handler method. */
export interface HandlerEnhancers {
  /** Exception filters apply (without any, the pipeline has no filter step). */
  filters: boolean;
  /** Where the method's parameters are described: its param decorators, or the `(payload, context)` convention. */
  argsMetadataKey: string;
}

/**
 * The enhancers of a handler, or undefined when it has none at all (no guard, interceptor, pipe
 * or filter, global or its own, and no param decorator): it is then called directly, with no
 * per-message cost. `config` is the app's (see applicationConfigOf); when it cannot be read,
 * globals are assumed, so an enhancer is never skipped (the handler only loses its direct call).
 */
export function enhancersOf(classRef: object, methodName: string, config: ApplicationConfig | undefined): HandlerEnhancers | undefined {
  const method = (classRef as { prototype: Record<string, object> }).prototype[methodName];
  const applies = (kind: EnhancerKind) =>
    hasGlobal(config, kind) || declaredEnhancers(kind, classRef).length > 0 || declaredEnhancers(kind, method).length > 0;
  const decorated = hasRouteArgs(classRef, methodName);
  const filters = applies('Filters');
  if (!decorated && !filters && !applies('Guards') && !applies('Interceptors') && !applies('Pipes')) return undefined;
  return { filters, argsMetadataKey: decorated ? ROUTE_ARGS_KEY : CONVENTIONAL_ARGS_METADATA };
}

function hasGlobal(config: ApplicationConfig | undefined, kind: EnhancerKind): boolean {
  if (!config || typeof config[`getGlobal${kind}`] !== 'function') return true;
  return config[`getGlobal${kind}`]().length > 0 || config[`getGlobalRequest${kind}`]().length > 0;
}
