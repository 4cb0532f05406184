import {
  EXCEPTION_FILTERS_METADATA,
  GUARDS_METADATA,
  INTERCEPTORS_METADATA,
  PIPES_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants';
import type { ApplicationConfig, ModuleRef } from '@nestjs/core';
import { CONVENTIONAL_ARGS_METADATA } from '../decorators/message-param';

/** What Nest's pipeline has to do for one handler method. */
export interface HandlerEnhancers {
  /** Exception filters apply (without any, the pipeline has no filter step). */
  filters: boolean;
  /** Where the method's parameters are described: its param decorators, or the `(payload, context)` convention. */
  argsMetadataKey: string;
}

type EnhancerKind = 'Guards' | 'Interceptors' | 'Pipes' | 'Filters';
const METADATA: Record<EnhancerKind, string> = {
  Guards: GUARDS_METADATA,
  Interceptors: INTERCEPTORS_METADATA,
  Pipes: PIPES_METADATA,
  Filters: EXCEPTION_FILTERS_METADATA,
};

/**
 * The enhancers of a handler, or undefined when it has none at all (no guard, interceptor, pipe
 * or filter, global or its own, and no param decorator): it is then called directly, with no
 * per-message cost.
 */
export function enhancersOf(classRef: object, methodName: string, config: ApplicationConfig | undefined): HandlerEnhancers | undefined {
  const method = (classRef as { prototype: Record<string, object> }).prototype[methodName];
  const applies = (kind: EnhancerKind) =>
    hasGlobal(config, kind) || listed(Reflect.getMetadata(METADATA[kind], classRef)) || listed(Reflect.getMetadata(METADATA[kind], method));
  const decorated = listed(Object.keys(Reflect.getMetadata(ROUTE_ARGS_METADATA, classRef, methodName) ?? {}));
  const filters = applies('Filters');
  if (!decorated && !filters && !applies('Guards') && !applies('Interceptors') && !applies('Pipes')) return undefined;
  return { filters, argsMetadataKey: decorated ? ROUTE_ARGS_METADATA : CONVENTIONAL_ARGS_METADATA };
}

/**
 * The app's global enhancers (`useGlobal*`, `APP_*`). Nest keeps them in its ApplicationConfig,
 * which it exposes to nothing injectable: it is read from the container behind ModuleRef, here
 * only. When it cannot be read, globals are assumed, so an enhancer is never skipped (the handler
 * only loses its direct call).
 */
export function applicationConfigOf(moduleRef: ModuleRef): ApplicationConfig | undefined {
  return (moduleRef as unknown as { container?: { applicationConfig?: ApplicationConfig } }).container?.applicationConfig;
}

function hasGlobal(config: ApplicationConfig | undefined, kind: EnhancerKind): boolean {
  if (!config || typeof config[`getGlobal${kind}`] !== 'function') return true;
  return config[`getGlobal${kind}`]().length > 0 || config[`getGlobalRequest${kind}`]().length > 0;
}

function listed(value: unknown): boolean {
  return Array.isArray(value) && value.length > 0;
}
