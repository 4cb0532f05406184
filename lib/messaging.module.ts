import { type DynamicModule, Logger, Module, type OnModuleInit, type Provider, Scope } from '@nestjs/common';
import { DiscoveryModule, ModulesContainer, REQUEST } from '@nestjs/core';
import { anyModuleProvides } from './nest/nest-internals';
import { ClsService, ClsServiceManager } from 'nestjs-cls';
import { ConnectionManager } from './connection/connection-manager';
import { HandlerConsumers } from './nest/handler-consumers';
import { HandlerConsumerFactory } from './nest/handler-consumer-factory';
import { MessagingLifecycle } from './nest/messaging-lifecycle';
import { HandlerExplorer } from './nest/handler-explorer';
import { HandlerPipelines } from './nest/handler-pipeline';
import { DeadLetters } from './operations/dead-letters';
import { TrackContext } from './context/track-context';
import type { MessagingModuleAsyncOptions, MessagingOptions, MessagingOptionsFactory } from './interfaces/messaging-options.interface';
import {
  COUNT_OUTCOMES,
  DEFAULT_CONNECTION,
  IDEMPOTENCY_STORE,
  MESSAGE_CONTEXT,
  MESSAGING_CONNECTION,
  MESSAGING_LOGGER,
  MESSAGING_OPTIONS,
  RPC_PUBLISHER,
  TELEMETRY,
} from './messaging.constants';
import { CodecRegistry } from './codec/codec-registry';
import { createTelemetry } from './telemetry/telemetry-factory';
import type { Telemetry } from './telemetry/telemetry.interface';
import { OutcomeCounters } from './telemetry/outcome-counters';
import { MemoryIdempotencyStore } from './idempotency/memory-idempotency.store';
import { MessagingConfigError } from './messaging.errors';
import { MessagingHealth } from './operations/messaging-health';
import { MessagingAdmin } from './operations/messaging-admin';
import { connectionName, resolveOptions, type ResolvedMessagingOptions } from './messaging.options';
import { connectionToken } from './util/connection-token';
import { ConnectionDirectory } from './nest/connection-directory';
import { Publisher } from './publisher/publisher';
import { ReplyRouter } from './rpc/reply-router';
import { RpcClient } from './rpc/rpc-client';
import { DelayQueues } from './topology/delay-queues';
import { MessagingHarness } from './testing/messaging-harness';
import { Outbox } from './outbox/outbox';
import { AsyncApiDocument } from './asyncapi/asyncapi-document';

const OPTIONS_FACTORY = Symbol('nestjs-messaging:options-factory');

/** What a connection offers the app: by class for the default connection, by named token otherwise. */
const PUBLIC_SERVICES = [RpcClient, MessagingHealth, MessagingAdmin, DeadLetters, MessagingHarness, Outbox];

@Module({})
export class MessagingModule implements OnModuleInit {
  constructor(private readonly modules: ModulesContainer) {}

  /**
   * `imports: [MessagingModule]` alone makes no connection: with no forRoot anywhere in the app,
   * every handler would be ignored without a word. (Beside a forRoot elsewhere it is harmless.)
   */
  onModuleInit(): void {
    if (!anyModuleProvides(this.modules, MESSAGING_CONNECTION)) {
      throw new MessagingConfigError(
        'MessagingModule is imported without forRoot, and no MessagingModule.forRoot is imported anywhere in this application: ' +
          "no handler consumes and nothing can send. Import MessagingModule.forRoot({ uri: 'amqp://user:password@host:5672' }) " +
          "once, in the root module (uri: 'memory://' runs without a broker)",
      );
    }
  }

  static forRoot(options: MessagingOptions): DynamicModule {
    const name = connectionName(options?.name);
    return this.assemble(name, [], [{ provide: MESSAGING_OPTIONS, useFactory: () => resolveOptions(options) }]);
  }

  static forRootAsync(options: MessagingModuleAsyncOptions): DynamicModule {
    const name = connectionName(options.name);
    // The name makes the module's tokens, before any factory runs: the factory's options keep it.
    const named = (given: MessagingOptions): ResolvedMessagingOptions => {
      if (given?.name !== undefined && connectionName(given.name) !== name) {
        throw new MessagingConfigError(
          `MessagingModule.forRootAsync({ name: ${JSON.stringify(options.name)} }) got options named ${JSON.stringify(given.name)}: give the name to forRootAsync only`,
        );
      }
      return resolveOptions({ ...given, name: options.name });
    };
    const ways = [options.useFactory, options.useClass, options.useExisting].filter((way) => way !== undefined);
    if (ways.length !== 1) {
      throw new MessagingConfigError('MessagingModule.forRootAsync needs exactly one of "useFactory", "useClass" or "useExisting"');
    }
    if (options.useFactory) {
      const factory = options.useFactory;
      return this.assemble(name, options.imports ?? [], [
        {
          provide: MESSAGING_OPTIONS,
          useFactory: async (...args: unknown[]) => named(await factory(...args)),
          inject: options.inject ?? [],
        },
      ]);
    }
    const fromFactory: Provider = {
      provide: MESSAGING_OPTIONS,
      useFactory: async (factory: MessagingOptionsFactory) => named(await factory.createMessagingOptions()),
      inject: [options.useClass ? OPTIONS_FACTORY : options.useExisting!],
    };
    const extra: Provider[] = options.useClass ? [{ provide: OPTIONS_FACTORY, useClass: options.useClass }] : [];
    return this.assemble(name, options.imports ?? [], [fromFactory, ...extra]);
  }

  private static assemble(name: string, imports: DynamicModule['imports'], optionsProviders: Provider[]): DynamicModule {
    // The default connection's services are provided (and injected) by class; a named one's only
    // under its own tokens (getRpcClientToken(name) & co.), so `app.get(RpcClient)` and a
    // constructor's `rpc: RpcClient` never meet another connection's.
    const services: Provider[] =
      name === DEFAULT_CONNECTION
        ? PUBLIC_SERVICES
        : PUBLIC_SERVICES.map((service) => ({ provide: connectionToken(service, name), useClass: service }));
    const exported = name === DEFAULT_CONNECTION ? PUBLIC_SERVICES : PUBLIC_SERVICES.map((service) => connectionToken(service, name));
    return {
      module: MessagingModule,
      global: true,
      imports: [DiscoveryModule, ...(imports ?? [])],
      providers: [
        ...optionsProviders,
        { provide: MESSAGING_CONNECTION, useValue: name },
        { provide: MESSAGING_LOGGER, useFactory: () => new Logger(name === DEFAULT_CONNECTION ? 'Messaging' : `Messaging:${name}`) },
        // The process-wide nestjs-cls service: the app's own ClsModule, if any, shares its context.
        { provide: ClsService, useFactory: () => ClsServiceManager.getClsService() },
        // Services built from the options (which are values only).
        {
          provide: CodecRegistry,
          useFactory: (opts: ResolvedMessagingOptions) => new CodecRegistry(opts.codecs, opts.compression, opts.maxMessageBytes),
          inject: [MESSAGING_OPTIONS],
        },
        OutcomeCounters,
        {
          provide: TELEMETRY,
          useFactory: (opts: ResolvedMessagingOptions, counters: OutcomeCounters, countOutcomes?: boolean) => {
            const telemetry = createTelemetry(opts.metrics, opts.name);
            return countOutcomes ? counters.around(telemetry) : telemetry;
          },
          inject: [MESSAGING_OPTIONS, OutcomeCounters, { token: COUNT_OUTCOMES, optional: true }],
        },
        {
          provide: IDEMPOTENCY_STORE,
          useFactory: (opts: ResolvedMessagingOptions) => opts.idempotency.store ?? new MemoryIdempotencyStore(),
          inject: [MESSAGING_OPTIONS],
        },
        {
          provide: ConnectionManager,
          useFactory: async (opts: ResolvedMessagingOptions, logger: Logger, telemetry: Telemetry) => {
            const connections = new ConnectionManager(opts, logger, telemetry);
            await connections.publisher.start();
            return connections;
          },
          inject: [MESSAGING_OPTIONS, MESSAGING_LOGGER, TELEMETRY],
        },
        {
          provide: Publisher,
          useFactory: async (
            connections: ConnectionManager,
            opts: ResolvedMessagingOptions,
            codecs: CodecRegistry,
            telemetry: Telemetry,
            logger: Logger,
          ) => {
            const publisher = new Publisher(connections.publisher, opts, codecs, telemetry, logger, 'publish');
            await publisher.start();
            return publisher;
          },
          inject: [ConnectionManager, MESSAGING_OPTIONS, CodecRegistry, TELEMETRY, MESSAGING_LOGGER],
        },
        {
          provide: RPC_PUBLISHER,
          useFactory: (
            connections: ConnectionManager,
            opts: ResolvedMessagingOptions,
            codecs: CodecRegistry,
            telemetry: Telemetry,
            logger: Logger,
          ) => new Publisher(connections.publisher, opts, codecs, telemetry, logger, 'rpc', false),
          inject: [ConnectionManager, MESSAGING_OPTIONS, CodecRegistry, TELEMETRY, MESSAGING_LOGGER],
        },
        {
          provide: ReplyRouter,
          // The router listens for the requests channel's first `channel` event: it exists before the channel opens.
          useFactory: async (requests: Publisher, connections: ConnectionManager, codecs: CodecRegistry, logger: Logger) => {
            const router = new ReplyRouter(requests, connections.publisher, codecs, logger);
            await requests.start();
            return router;
          },
          inject: [RPC_PUBLISHER, ConnectionManager, CodecRegistry, MESSAGING_LOGGER],
        },
        { provide: MESSAGE_CONTEXT, scope: Scope.REQUEST, useFactory: (request: unknown) => request, inject: [REQUEST] },
        TrackContext,
        DelayQueues,
        HandlerExplorer,
        HandlerPipelines,
        HandlerConsumerFactory,
        HandlerConsumers,
        MessagingLifecycle,
        ConnectionDirectory,
        // By class from every connection: each describes the whole app, so any one Nest picks will do.
        AsyncApiDocument,
        ...services,
      ],
      exports: [...exported, TrackContext, MESSAGE_CONTEXT, AsyncApiDocument],
    };
  }
}
