import { type DynamicModule, Module, ValidationPipe } from '@nestjs/common';
import { APP_PIPE } from '@nestjs/core';
import { ClsModule } from 'nestjs-cls';
import { MessagingModule } from '../lib';
import { ApiModule } from './api/api.module';
import { requestIdOf } from './api/request-id';
import { APP_CONFIG, type AppConfig } from './config';
import { ConfigModule } from './config.module';
import { DatabaseModule, OrdersDatabase } from './database.module';
import { messagingOptions } from './messaging.config';
import { OpsModule } from './ops/ops.module';
import { WorkerModule } from './worker/worker.module';

/**
 * One codebase, three shapes: the HTTP API, a worker, or both in one process (ROLE); each with
 * its probes and metrics (OpsModule), served over HTTP by a worker when HEALTH_PORT is set.
 */
@Module({})
export class AppModule {
  static register(config: AppConfig): DynamicModule {
    const api = config.role === 'api' || config.role === 'all';
    const worker = config.role === 'worker' || config.role === 'all';
    return {
      module: AppModule,
      imports: [
        ConfigModule.register(config),
        DatabaseModule,
        MessagingModule.forRootAsync({ inject: [APP_CONFIG, OrdersDatabase], useFactory: messagingOptions }),
        ...(api
          ? [
              // Every HTTP request runs in a CLS context whose id is its x-request-id; the
              // messages sent while handling it carry that id to the workers.
              ClsModule.forRoot({
                global: true,
                middleware: {
                  mount: true,
                  generateId: true,
                  idGenerator: requestIdOf,
                  setup: (cls, _req, res) => res.setHeader('x-request-id', cls.getId()),
                },
              }),
              ApiModule,
            ]
          : []),
        ...(worker ? [WorkerModule] : []),
        OpsModule,
      ],
      providers: [
        // For HTTP bodies and messages alike: a message handler's payload is checked against its
        // declared class (see messages.ts). Unknown properties are stripped, not refused, so a
        // producer that adds a field does not break the workers that do not know it yet.
        { provide: APP_PIPE, useFactory: () => new ValidationPipe({ whitelist: true }) },
      ],
    };
  }
}
