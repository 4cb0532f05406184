/**
 * The Nest internals the library relies on (lib/nest/nest-internals.ts), each against the installed
 * Nest on a small app: the internal still has the shape its function reads or writes, and the
 * function still does its job. A Nest version that moves one fails here, with the internal named.
 */
import {
  type ArgumentMetadata,
  type CanActivate,
  Catch,
  createParamDecorator,
  type ExceptionFilter,
  ForbiddenException,
  Global,
  Inject,
  Injectable,
  type INestApplicationContext,
  Module,
  type ModuleMetadata,
  type NestInterceptor,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
  type PipeTransform,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
} from '@nestjs/common';
import { ENTRY_PROVIDER_WATERMARK, ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import { RouteParamtypes } from '@nestjs/common/enums/route-paramtypes.enum';
import {
  APP_GUARD,
  ApplicationConfig,
  ContextIdFactory,
  DiscoveryModule,
  DiscoveryService,
  ExternalContextCreator,
  ModuleRef,
  ModulesContainer,
  type ParamsFactory,
} from '@nestjs/core';
import { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper';
import { Module as ContainerModule } from '@nestjs/core/injector/module';
import { Test } from '@nestjs/testing';
import { MessageParamType } from '../../lib/decorators/message-param';
import { AmqpArgumentsHost } from '../../lib/nest/amqp-arguments-host';
import {
  addRouteArg,
  applicationConfigOf,
  BODY_PARAM_TYPE,
  declaredEnhancers,
  destroyFirstBootstrapLast,
  hasRouteArgs,
  inquirerIdOf,
  interceptGuardsAndPipes,
  isAliasWrapper,
  isStaticDependencyTree,
  markEntryProvider,
  replaceErrorProxy,
  ROUTE_ARGS_KEY,
  routeArg,
  anyModuleProvides,
  type ApplyFilters,
  type HandlerCall,
} from '../../lib/nest/nest-internals';

/** The failure message of an assertion on an internal: what moved, where Nest keeps it. */
const internal = (name: string) => `Nest internal changed: ${name}`;

type Handler = Record<string, (...args: unknown[]) => unknown>;

/** Hands a handler the payload for BODY_PARAM_TYPE, and `<type>:<data>` for any other parameter. */
const params: ParamsFactory = {
  exchangeKeyForValue: (type, data, args: unknown[]) => (type === BODY_PARAM_TYPE ? args[0] : `${type}:${String(data)}`),
};

describe('Nest internals', () => {
  const apps: INestApplicationContext[] = [];
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  async function start(metadata: ModuleMetadata): Promise<INestApplicationContext> {
    const module = await Test.createTestingModule({ ...metadata, imports: [DiscoveryModule, ...(metadata.imports ?? [])] }).compile();
    const app = await module.init();
    apps.push(app);
    return app;
  }

  /** What DiscoveryService gives the handler explorer for `token`. */
  function wrapperOf(app: INestApplicationContext, token: unknown): InstanceWrapper {
    const wrapper = app
      .get(DiscoveryService)
      .getProviders()
      .find((w) => w.token === token);
    if (!wrapper) throw new Error(`no provider ${String(token)}`);
    return wrapper;
  }

  /** A handler call built by ExternalContextCreator, as the library builds one (filters off unless asked). */
  function call(
    creator: ExternalContextCreator,
    instance: object,
    methodName: string,
    options: { metadataKey?: string; filters?: boolean; contextId?: ReturnType<typeof ContextIdFactory.create>; inquirerId?: string } = {},
  ) {
    return creator.create(
      instance,
      (instance as Handler)[methodName],
      methodName,
      options.metadataKey,
      params,
      options.contextId,
      options.inquirerId,
      { guards: true, interceptors: true, filters: options.filters ?? false },
    );
  }

  it('ROUTE_ARGS_KEY: where createParamDecorator writes, and what ExternalContextCreator reads as a metadata key', async () => {
    const Upper = createParamDecorator((_data: unknown, host) => String(host.getArgByIndex(0)).toUpperCase());
    @Injectable()
    class Handlers {
      shout(@Upper() text: string) {
        return text;
      }
    }
    expect(ROUTE_ARGS_KEY, internal("ROUTE_ARGS_METADATA of '@nestjs/common/constants'")).toBe(ROUTE_ARGS_METADATA);
    expect(
      Object.keys(Reflect.getMetadata(ROUTE_ARGS_KEY, Handlers, 'shout') ?? {}),
      internal('createParamDecorator writes under ROUTE_ARGS_METADATA'),
    ).toHaveLength(1);

    const app = await start({ providers: [Handlers] });
    const shout = call(app.get(ExternalContextCreator), app.get(Handlers), 'shout', { metadataKey: ROUTE_ARGS_KEY });
    expect(await shout('hello'), internal('ExternalContextCreator.create reads param decorators under ROUTE_ARGS_METADATA')).toBe('HELLO');
  });

  it("BODY_PARAM_TYPE: pipes see it as 'body', and the other MessageParamType numbers as 'custom'", async () => {
    const seen: string[] = [];
    const recording: PipeTransform = {
      transform(value: unknown, metadata: ArgumentMetadata) {
        seen.push(`${String(metadata.data)}=${metadata.type}`);
        return value;
      },
    };
    @Injectable()
    class Handlers {
      handle(...args: unknown[]) {
        return args;
      }
    }
    addRouteArg(Handlers, 'handle', MessageParamType.PAYLOAD, 0, 'payload', [recording]);
    addRouteArg(Handlers, 'handle', MessageParamType.CONTEXT, 1, 'context', [recording]);
    addRouteArg(Handlers, 'handle', MessageParamType.HEADER, 2, 'header', [recording]);
    expect(BODY_PARAM_TYPE, internal("RouteParamtypes.BODY of '@nestjs/common/enums/route-paramtypes.enum'")).toBe(RouteParamtypes.BODY);

    const app = await start({ providers: [Handlers] });
    await call(app.get(ExternalContextCreator), app.get(Handlers), 'handle', { metadataKey: ROUTE_ARGS_KEY })('{}');
    expect(seen.sort(), internal('ParamsTokenFactory#exchangeEnumForString (the type PipesConsumer hands pipes)')).toEqual([
      'context=custom',
      'header=custom',
      'payload=body',
    ]);
  });

  it("routeArg: a record in Nest's route-arguments format, which ExternalContextCreator reads under any key", async () => {
    const KEY = 'test:conventional-args';
    @Injectable()
    class Handlers {
      handle(payload: unknown, header: unknown) {
        return [payload, header];
      }
    }
    Reflect.defineMetadata(KEY, { ...routeArg(BODY_PARAM_TYPE, 0), ...routeArg(MessageParamType.HEADER, 1, 'x-id') }, Handlers, 'handle');

    const app = await start({ providers: [Handlers] });
    const handle = call(app.get(ExternalContextCreator), app.get(Handlers), 'handle', { metadataKey: KEY });
    expect(await handle({ n: 1 }), internal('the route-arguments format { "<type>:<index>": { index, data, pipes } }')).toEqual([
      { n: 1 },
      `${MessageParamType.HEADER}:x-id`,
    ]);
  });

  it("addRouteArg: adds a parameter beside createParamDecorator's, and both reach the handler", async () => {
    const Tenant = createParamDecorator(() => 'acme');
    @Injectable()
    class Handlers {
      handle(@Tenant() tenant: string, payload: unknown) {
        return [tenant, payload];
      }
    }
    addRouteArg(Handlers, 'handle', BODY_PARAM_TYPE, 1);
    expect(
      Object.keys(Reflect.getMetadata(ROUTE_ARGS_METADATA, Handlers, 'handle')),
      internal('ROUTE_ARGS_METADATA holds one entry per parameter'),
    ).toHaveLength(2);

    const app = await start({ providers: [Handlers] });
    const handle = call(app.get(ExternalContextCreator), app.get(Handlers), 'handle', { metadataKey: ROUTE_ARGS_KEY });
    expect(
      await handle({ n: 1 }),
      internal('ExternalContextCreator reads custom and numbered entries of ROUTE_ARGS_METADATA together'),
    ).toEqual(['acme', { n: 1 }]);
  });

  it("hasRouteArgs: sees Nest's param decorators and ours, and nothing on a plain method", () => {
    const Tenant = createParamDecorator(() => 'acme');
    class Handlers {
      nest(@Tenant() _tenant: string) {}
      ours(_payload: unknown) {}
      plain(_payload: unknown) {}
    }
    addRouteArg(Handlers, 'ours', BODY_PARAM_TYPE, 0);
    expect(hasRouteArgs(Handlers, 'nest'), internal('createParamDecorator writes under ROUTE_ARGS_METADATA')).toBe(true);
    expect(hasRouteArgs(Handlers, 'ours')).toBe(true);
    expect(hasRouteArgs(Handlers, 'plain')).toBe(false);
  });

  it('declaredEnhancers: what @UseGuards, @UseInterceptors, @UsePipes and @UseFilters put on a class or a method', () => {
    class Guard implements CanActivate {
      canActivate() {
        return true;
      }
    }
    class Interceptor implements NestInterceptor {
      intercept() {
        return undefined as never;
      }
    }
    class Pipe implements PipeTransform {
      transform(value: unknown) {
        return value;
      }
    }
    @Catch()
    class Filter implements ExceptionFilter {
      catch() {}
    }
    @UseGuards(Guard)
    @UseInterceptors(Interceptor)
    class Handlers {
      @UsePipes(Pipe)
      @UseFilters(Filter)
      decorated() {}
      plain() {}
    }
    const decorated = Handlers.prototype.decorated;
    expect(declaredEnhancers('Guards', Handlers), internal('GUARDS_METADATA, written by @UseGuards()')).toEqual([Guard]);
    expect(declaredEnhancers('Interceptors', Handlers), internal('INTERCEPTORS_METADATA, written by @UseInterceptors()')).toEqual([
      Interceptor,
    ]);
    expect(declaredEnhancers('Pipes', decorated), internal('PIPES_METADATA, written by @UsePipes()')).toEqual([Pipe]);
    expect(declaredEnhancers('Filters', decorated), internal('EXCEPTION_FILTERS_METADATA, written by @UseFilters()')).toEqual([Filter]);
    for (const kind of ['Guards', 'Interceptors', 'Pipes', 'Filters'] as const) {
      expect(declaredEnhancers(kind, Handlers.prototype.plain)).toEqual([]);
    }
  });

  it("applicationConfigOf: the app's ApplicationConfig behind ModuleRef, with its global and request-scoped enhancers", async () => {
    @Injectable()
    class Allow implements CanActivate {
      canActivate() {
        return true;
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    class AllowPerRequest implements CanActivate {
      canActivate() {
        return true;
      }
    }
    @Injectable()
    class Holder {
      constructor(readonly moduleRef: ModuleRef) {}
    }
    const app = await start({
      providers: [Holder, { provide: APP_GUARD, useClass: Allow }, { provide: APP_GUARD, useClass: AllowPerRequest }],
    });
    const config = applicationConfigOf(app.get(Holder).moduleRef);
    expect(config, internal('ModuleRef#container.applicationConfig (private)')).toBeInstanceOf(ApplicationConfig);
    for (const kind of ['Guards', 'Interceptors', 'Pipes', 'Filters'] as const) {
      expect(typeof config?.[`getGlobal${kind}`], internal(`ApplicationConfig#getGlobal${kind}()`)).toBe('function');
      expect(typeof config?.[`getGlobalRequest${kind}`], internal(`ApplicationConfig#getGlobalRequest${kind}()`)).toBe('function');
    }
    expect(config?.getGlobalGuards().map((guard) => guard.constructor)).toEqual([Allow]);
    expect(config?.getGlobalRequestGuards().map((wrapper) => wrapper.metatype)).toEqual([AllowPerRequest]);
  });

  it('markEntryProvider: makes a class an entry provider, to which Nest adds global request-scoped enhancers', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequestGuard implements CanActivate {
      canActivate() {
        return true;
      }
    }
    @Injectable()
    class Marked {}
    @Injectable()
    class Unmarked {}
    markEntryProvider(Marked);
    expect(Reflect.getMetadata(ENTRY_PROVIDER_WATERMARK, Marked), internal("ENTRY_PROVIDER_WATERMARK of '@nestjs/common/constants'")).toBe(
      true,
    );

    const app = await start({ providers: [Marked, Unmarked, { provide: APP_GUARD, useClass: PerRequestGuard }] });
    const holder = [...app.get(ModulesContainer).values()].find((module) => module.providers.has(Marked));
    expect(
      holder?.entryProviders.map((wrapper) => wrapper.token),
      internal('Module#entryProviders (classes marked with ENTRY_PROVIDER_WATERMARK)'),
    ).toEqual([Marked]);
    expect(
      isStaticDependencyTree(wrapperOf(app, Marked)),
      internal('Scanner#addScopedEnhancersMetadata (global request-scoped enhancers on entry providers)'),
    ).toBe(false);
    expect(isStaticDependencyTree(wrapperOf(app, Unmarked))).toBe(true);
  });

  it('isAliasWrapper: true for a useExisting provider, false for the class it aliases', async () => {
    @Injectable()
    class Handlers {}
    const app = await start({ providers: [Handlers, { provide: 'ALIAS', useExisting: Handlers }] });
    expect(typeof wrapperOf(app, Handlers).isAlias, internal('InstanceWrapper#isAlias')).toBe('boolean');
    expect(isAliasWrapper(wrapperOf(app, 'ALIAS')), internal('InstanceWrapper#isAlias')).toBe(true);
    expect(isAliasWrapper(wrapperOf(app, Handlers))).toBe(false);
  });

  it('isStaticDependencyTree: false for a request-scoped class and for one that depends on one', async () => {
    @Injectable({ scope: Scope.REQUEST })
    class PerRequest {}
    @Injectable()
    class DependsOnPerRequest {
      constructor(readonly perRequest: PerRequest) {}
    }
    @Injectable()
    class Singleton {}
    const app = await start({ providers: [PerRequest, DependsOnPerRequest, Singleton] });
    expect(typeof InstanceWrapper.prototype.isDependencyTreeStatic, internal('InstanceWrapper#isDependencyTreeStatic()')).toBe('function');
    expect(isStaticDependencyTree(wrapperOf(app, PerRequest)), internal('InstanceWrapper#isDependencyTreeStatic()')).toBe(false);
    expect(isStaticDependencyTree(wrapperOf(app, DependsOnPerRequest)), internal('InstanceWrapper#isDependencyTreeStatic()')).toBe(false);
    expect(isStaticDependencyTree(wrapperOf(app, Singleton)), internal('InstanceWrapper#isDependencyTreeStatic()')).toBe(true);
  });

  it('inquirerIdOf: as the inquirer, it makes Nest apply the enhancers of the module that holds a scoped handler', async () => {
    const seen: string[] = [];
    @Injectable()
    class NameGuard implements CanActivate {
      constructor(@Inject('NAME') private readonly name: string) {}
      canActivate() {
        seen.push(this.name);
        return true;
      }
    }
    @Injectable({ scope: Scope.REQUEST })
    @UseGuards(NameGuard)
    class Handlers {
      handle() {
        return 'handled';
      }
    }
    @Module({ providers: [Handlers, { provide: 'NAME', useValue: 'first' }] })
    class FirstModule {}
    @Module({ providers: [Handlers, { provide: 'NAME', useValue: 'second' }] })
    class SecondModule {}
    const app = await start({ imports: [FirstModule, SecondModule] });

    const wrappers = app
      .get(DiscoveryService)
      .getProviders({ include: [SecondModule] })
      .filter((w) => w.token === Handlers);
    expect(wrappers).toHaveLength(1);
    const id = inquirerIdOf(wrappers[0]);
    expect(typeof id, internal('InstanceWrapper#id')).toBe('string');

    const contextId = ContextIdFactory.create();
    const instance = await app.select(SecondModule).resolve(Handlers, contextId);
    const handle = call(app.get(ExternalContextCreator), instance, 'handle', { contextId, inquirerId: id });
    expect(await handle()).toBe('handled');
    expect(seen, internal('ExternalContextCreator.create finds the host module by its inquirerId (InstanceWrapper#id)')).toEqual([
      'second',
    ]);
  });

  it('interceptGuardsAndPipes: sees what guards and pipes throw, through createGuardsFn and getParamValue; the shared creator is untouched', async () => {
    const guardErrors: unknown[] = [];
    const pipeErrors: unknown[] = [];
    const errors = {
      fromGuard: (error: unknown) => (guardErrors.push(error), new Error('guard refused')),
      fromPipe: (error: unknown) => (pipeErrors.push(error), new Error('pipe refused')),
    };
    const invalid = new Error('invalid');
    const failing: PipeTransform = {
      transform() {
        throw invalid;
      },
    };
    class Deny implements CanActivate {
      canActivate() {
        return false;
      }
    }
    @Injectable()
    class Handlers {
      @UseGuards(Deny)
      guarded() {
        return 'guarded';
      }
      piped(payload: unknown) {
        return payload;
      }
    }
    addRouteArg(Handlers, 'piped', BODY_PARAM_TYPE, 0, undefined, [failing]);
    const app = await start({ providers: [Handlers] });
    const creator = app.get(ExternalContextCreator);
    expect(typeof ExternalContextCreator.prototype.createGuardsFn, internal('ExternalContextCreator#createGuardsFn()')).toBe('function');
    expect(typeof ExternalContextCreator.prototype.getParamValue, internal('ExternalContextCreator#getParamValue()')).toBe('function');

    const view = interceptGuardsAndPipes(creator, errors);
    await expect(
      call(view, app.get(Handlers), 'guarded')(),
      internal('ExternalContextCreator#create runs guards through this.createGuardsFn()'),
    ).rejects.toThrow('guard refused');
    expect(guardErrors, internal('ExternalContextCreator#createGuardsFn() throws ForbiddenException for a guard that says no')).toEqual([
      expect.any(ForbiddenException),
    ]);
    await expect(
      call(view, app.get(Handlers), 'piped', { metadataKey: ROUTE_ARGS_KEY })({}),
      internal('ExternalContextCreator#create runs pipes through this.getParamValue()'),
    ).rejects.toThrow('pipe refused');
    expect(pipeErrors).toEqual([invalid]);
    expect(creator.createGuardsFn).toBe(ExternalContextCreator.prototype.createGuardsFn);
    expect(creator.getParamValue).toBe(ExternalContextCreator.prototype.getParamValue);
  });

  it("replaceErrorProxy: puts a wrapper of our own in place of ExternalContextCreator's private externalErrorProxy", async () => {
    const wrapped: string[] = [];
    const wrap = (target: HandlerCall, applyFilters: ApplyFilters): HandlerCall => {
      return async (...args: unknown[]) => {
        wrapped.push('call');
        try {
          return await target(...args);
        } catch (error) {
          const handled = applyFilters(error, new AmqpArgumentsHost(args as never));
          if (handled) return handled;
          throw error;
        }
      };
    };
    @Catch()
    class Recover implements ExceptionFilter {
      catch() {
        return 'recovered';
      }
    }
    const failure = new Error('failed');
    @Injectable()
    class Handlers {
      @UseFilters(Recover)
      filtered() {
        throw failure;
      }
      unfiltered() {
        throw failure;
      }
    }
    const app = await start({ providers: [Handlers] });
    const creator = app.get(ExternalContextCreator);
    const shared = (creator as unknown as { externalErrorProxy?: { createProxy?: unknown } }).externalErrorProxy;
    expect(typeof shared?.createProxy, internal('ExternalContextCreator#externalErrorProxy.createProxy() (private)')).toBe('function');

    const view = Object.create(creator) as ExternalContextCreator;
    replaceErrorProxy(view, wrap);
    expect(
      await call(view, app.get(Handlers), 'filtered', { filters: true })(),
      internal('ExternalContextCreator#externalErrorProxy (private), with ExternalExceptionsHandler#invokeCustomFilters()'),
    ).toBe('recovered');
    await expect(call(view, app.get(Handlers), 'unfiltered', { filters: true })()).rejects.toBe(failure);
    expect(wrapped, internal('ExternalContextCreator#externalErrorProxy (private)')).toEqual(['call', 'call']);
    expect((creator as unknown as { externalErrorProxy: unknown }).externalErrorProxy).toBe(shared);
  });

  it("destroyFirstBootstrapLast: its module's onModuleDestroy runs first and its onApplicationBootstrap last, globals included", async () => {
    const order: string[] = [];
    const hooks = (name: string) =>
      class implements OnApplicationBootstrap, OnModuleDestroy {
        onApplicationBootstrap() {
          order.push(`bootstrap ${name}`);
        }
        onModuleDestroy() {
          order.push(`destroy ${name}`);
        }
      };
    @Injectable()
    class Database extends hooks('database') {}
    @Global()
    @Module({ providers: [Database], exports: [Database] })
    class DatabaseModule {}
    @Injectable()
    class Root extends hooks('root') {}
    @Injectable()
    class Drainer extends hooks('drainer') {
      constructor(modules: ModulesContainer) {
        super();
        destroyFirstBootstrapLast(modules, Drainer);
      }
    }
    @Module({ providers: [Drainer] })
    class DrainerModule {}
    expect(typeof Object.getOwnPropertyDescriptor(ContainerModule.prototype, 'distance')?.set, internal('Module#distance (setter)')).toBe(
      'function',
    );

    const app = await start({ imports: [DatabaseModule, DrainerModule], providers: [Root] });
    await app.close();
    apps.splice(apps.indexOf(app), 1);
    expect(order, internal('Module#distance, which NestApplicationContext sorts lifecycle hooks by')).toEqual([
      'bootstrap database',
      'bootstrap root',
      'bootstrap drainer',
      'destroy drainer',
      'destroy root',
      'destroy database',
    ]);
  });

  it('anyModuleProvides: sees a provider token in any module of the app (Module#providers), and not one that is nowhere', async () => {
    const TOKEN = Symbol('somewhere');
    @Module({ providers: [{ provide: TOKEN, useValue: 1 }] })
    class Deep {}
    @Module({ imports: [Deep] })
    class Middle {}
    const app = await start({ imports: [Middle] });
    const modules = app.get(ModulesContainer);
    expect(anyModuleProvides(modules, TOKEN), internal('Module#providers, a Map keyed by token')).toBe(true);
    expect(anyModuleProvides(modules, Symbol('nowhere'))).toBe(false);
  });
});
