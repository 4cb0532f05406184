/**
 * Every place the library reaches past Nest's public API: deep imports, private fields, Nest's own
 * metadata keys and formats, and methods of Nest's classes it overrides or relies on being called.
 * Each function names the internal it touches and why nothing public does the job. A Nest major
 * that moves one of them fails test/unit/nest-internals.spec.ts, with the internal named.
 */
import type { ArgumentsHost, Type } from '@nestjs/common';
import {
  ENTRY_PROVIDER_WATERMARK,
  EXCEPTION_FILTERS_METADATA,
  GUARDS_METADATA,
  INTERCEPTORS_METADATA,
  PIPES_METADATA,
  ROUTE_ARGS_METADATA,
} from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import type { ApplicationConfig, ExternalContextCreator, ModuleRef, ModulesContainer } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';

/** What DiscoveryService returns for a provider or controller; its class is only reachable by a deep import. */
export type { InstanceWrapper };

/**
 * Nest's metadata key for a method's parameter decorators (`ROUTE_ARGS_METADATA`), where
 * `createParamDecorator` writes too: handed to ExternalContextCreator.create as its metadata key.
 */
export const ROUTE_ARGS_KEY: string = ROUTE_ARGS_METADATA;

/**
 * The parameter type Nest's pipes see as `type: 'body'` (RouteParamtypes.BODY, an internal enum):
 * ValidationPipe validates such a parameter. A number that is not BODY, QUERY or PARAM reads as 'custom'.
 */
export const BODY_PARAM_TYPE: number = RouteParamtypes.BODY;

/** Parameters in Nest's route-arguments format: each one's position, its decorator's data, its pipes. */
export type RouteArgs = Record<string, { index: number; data: unknown; pipes: unknown[] }>;

/**
 * A route-arguments record of one parameter, keyed `"<type>:<index>"`: the format `@Body()` and
 * `createParamDecorator` write and ExternalContextCreator reads (it splits the key at ':' for the
 * type it hands the params factory). Nest has no public way to describe a parameter.
 */
export function routeArg(type: number, index: number, data?: unknown, pipes: unknown[] = []): RouteArgs {
  return { [`${type}:${index}`]: { index, data, pipes } };
}

/**
 * Adds a parameter to the route arguments of `classRef`'s method under Nest's own key, beside
 * what `createParamDecorator` wrote, so Nest's custom param decorators work on the same method.
 */
export function addRouteArg(
  classRef: object,
  methodName: string | symbol,
  type: number,
  index: number,
  data?: unknown,
  pipes: unknown[] = [],
): void {
  const args: RouteArgs = Reflect.getMetadata(ROUTE_ARGS_METADATA, classRef, methodName) ?? {};
  Reflect.defineMetadata(ROUTE_ARGS_METADATA, { ...args, ...routeArg(type, index, data, pipes) }, classRef, methodName);
}

/** Whether any param decorator (ours or Nest's) describes a parameter of the method, read under Nest's key. */
export function hasRouteArgs(classRef: object, methodName: string): boolean {
  return Object.keys(Reflect.getMetadata(ROUTE_ARGS_METADATA, classRef, methodName) ?? {}).length > 0;
}

export type EnhancerKind = 'Guards' | 'Interceptors' | 'Pipes' | 'Filters';
const ENHANCERS_METADATA: Record<EnhancerKind, string> = {
  Guards: GUARDS_METADATA,
  Interceptors: INTERCEPTORS_METADATA,
  Pipes: PIPES_METADATA,
  Filters: EXCEPTION_FILTERS_METADATA,
};

/**
 * The guards, interceptors, pipes or exception filters that `@UseGuards()` and its siblings put on
 * a class or a method, read from the metadata keys they write: Nest has no public reader, and the
 * library needs to know a handler has none to call it directly.
 */
export function declaredEnhancers(kind: EnhancerKind, target: object): unknown[] {
  const list: unknown = Reflect.getMetadata(ENHANCERS_METADATA[kind], target);
  return Array.isArray(list) ? list : [];
}

/**
 * The app's global enhancers (`useGlobal*`, `APP_*`) are kept in its ApplicationConfig, which Nest
 * exposes to nothing injectable: it is read from ModuleRef's private `container`. Undefined when
 * that cannot be read.
 */
export function applicationConfigOf(moduleRef: ModuleRef): ApplicationConfig | undefined {
  return (moduleRef as unknown as { container?: { applicationConfig?: ApplicationConfig } }).container?.applicationConfig;
}

/**
 * Marks a class as one of Nest's entry providers (ENTRY_PROVIDER_WATERMARK, as gateways are): Nest
 * then adds global request-scoped enhancers to it, as it does to controllers, so they apply to its
 * handlers per message.
 */
export function markEntryProvider(classRef: object): void {
  Reflect.defineMetadata(ENTRY_PROVIDER_WATERMARK, true, classRef);
}

/** Whether the wrapper is an alias (`useExisting`) of another provider (InstanceWrapper#isAlias): its class is found under its own token. */
export function isAliasWrapper(wrapper: InstanceWrapper): boolean {
  return wrapper.isAlias;
}

/**
 * Whether neither the class nor anything it depends on (enhancers included) is request-scoped or
 * durable (InstanceWrapper#isDependencyTreeStatic): such a handler gets one instance for good,
 * the others one per message.
 */
export function isStaticDependencyTree(wrapper: InstanceWrapper): boolean {
  return wrapper.isDependencyTreeStatic();
}

/**
 * The wrapper's id (InstanceWrapper#id), which ExternalContextCreator.create takes as the inquirer:
 * with it Nest finds the module holding a handler provided by several modules, and a scoped
 * handler's transient enhancers.
 */
export function inquirerIdOf(wrapper: InstanceWrapper): string {
  return wrapper.id;
}

/** Sees what a handler's guards and pipes throw, and returns what to throw instead. */
export interface GuardAndPipeErrors {
  fromGuard(error: unknown): unknown;
  fromPipe(error: unknown): unknown;
}

type GuardsFn = (...args: unknown[]) => Promise<void>;

/**
 * ExternalContextCreator.create runs a handler's guards through its own `createGuardsFn` and each
 * parameter's pipes through its own `getParamValue`, both called on `this`. An object inheriting
 * from `creator` that overrides them sees what guards (a guard that says no: Nest's
 * ForbiddenException) and pipes throw, while the creator itself, shared by other libraries, stays
 * untouched. Nest has no hook that tells a refusal from a handler's failure.
 */
export function interceptGuardsAndPipes(creator: ExternalContextCreator, errors: GuardAndPipeErrors): ExternalContextCreator {
  const view = Object.create(creator) as ExternalContextCreator;
  view.createGuardsFn = function (this: ExternalContextCreator, ...args: Parameters<ExternalContextCreator['createGuardsFn']>) {
    const canActivate = creator.createGuardsFn.apply(this, args) as GuardsFn | null;
    if (!canActivate) return null;
    return async (...guardArgs: unknown[]) => {
      try {
        await canActivate(...guardArgs);
      } catch (error) {
        throw errors.fromGuard(error);
      }
    };
  };
  view.getParamValue = async function (this: ExternalContextCreator, ...args: Parameters<ExternalContextCreator['getParamValue']>) {
    try {
      return await creator.getParamValue.apply(this, args);
    } catch (error) {
      throw errors.fromPipe(error);
    }
  };
  return view;
}

/** A handler call as ExternalContextCreator builds it. */
export type HandlerCall = (...args: unknown[]) => Promise<unknown>;
/** Runs a handler's exception filters on `error`: a filter's result, or a falsy value when none caught it. */
export type ApplyFilters = (error: unknown, host: ArgumentsHost) => unknown;

interface ExceptionsHandler {
  invokeCustomFilters(exception: unknown, host: ArgumentsHost): unknown;
}

/**
 * ExternalContextCreator.create applies exception filters through its private
 * `externalErrorProxy.createProxy(call, exceptionsHandler)`, whose fallback logs every error no
 * filter caught. On `creator` (a view from interceptGuardsAndPipes, never Nest's shared creator),
 * `wrap` takes its place: it gets the call and the handler's filters (ExternalExceptionsHandler's
 * `invokeCustomFilters`). Where the field is missing, Nest's proxy stays in place.
 */
export function replaceErrorProxy(
  creator: ExternalContextCreator,
  wrap: (call: HandlerCall, applyFilters: ApplyFilters) => HandlerCall,
): void {
  const internals = creator as unknown as { externalErrorProxy?: unknown };
  if (!internals.externalErrorProxy) return;
  internals.externalErrorProxy = {
    createProxy: (call: HandlerCall, exceptionsHandler: ExceptionsHandler) =>
      wrap(call, (error, host) => exceptionsHandler.invokeCustomFilters(error, host)),
  };
}

/**
 * Nest calls onModuleDestroy from the root module down and global modules last, so a database
 * module would close before our handlers finished draining, and it has no public way to order
 * modules. The module holding `provider` gets the lowest `distance` (Module#distance, which Nest
 * sorts lifecycle hooks by): its onModuleDestroy then runs before any other module's, and its
 * onApplicationBootstrap after every other module's. Must run at instantiation, before Nest
 * orders the hooks.
 */
export function destroyFirstBootstrapLast(modules: ModulesContainer, provider: Type<unknown>): void {
  for (const module of modules.values()) {
    if (module.providers.has(provider)) module.distance = -1;
  }
}

/**
 * Whether any module of the app has a provider under `token` (Module#providers): a module that
 * Nest did not give DiscoveryModule has no public way to look into the others.
 */
export function anyModuleProvides(modules: ModulesContainer, token: unknown): boolean {
  for (const module of modules.values()) {
    if (module.providers.has(token as string)) return true;
  }
  return false;
}
