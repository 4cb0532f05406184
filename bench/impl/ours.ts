/**
 * nestjs-messaging (this repository), with its defaults: MessagingModule.forRoot({ uri, prefetch }),
 * @MessageHandler({ queue, prefetch }) on a provider method (with `queueType` in S10), RpcClient.send / request.
 * BENCH_OURS_GLOBAL_INTERCEPTOR=1 adds a pass-through global interceptor (APP_INTERCEPTOR), to
 * measure what Nest's handler pipeline costs next to the direct call a handler without enhancers gets.
 * BENCH_OURS_METRICS=prometheus turns on `metrics: { prometheus }` (a registry of its own, from the
 * root's prom-client), to measure what metrics cost next to the default, which records nothing.
 * BENCH_OURS_AMQPLIB=no-frame-writer,no-direct-writes,no-coalesce turns off the library's amqplib
 * shortcuts (its private frame writer, its writes past amqplib's multiplexer, its per-tick write
 * coalescing; lib/transport/amqp/amqplib-shortcuts.ts), to measure what each buys.
 *
 * The library and the Nest packages it was built against are loaded from the repository root, so
 * that Nest's DI tokens are the library's own (bench/node_modules has its own copies for the peers);
 * the library only in setup(), so that S9 can measure a process with Nest and without it.
 */
import * as path from 'path';
import { createRequire } from 'module';
import type * as NestCommon from '@nestjs/common';
import type * as NestCore from '@nestjs/core';
import { Adapter, Msg, SetupOptions } from './types';

const ROOT = path.resolve(__dirname, '..', '..', '..'); // bench/dist/impl -> repository root
const rootRequire = createRequire(path.join(ROOT, 'package.json'));

/** Nest from the repository root, as the library sees it. */
export function loadNest(): { common: typeof NestCommon; core: typeof NestCore } {
  rootRequire('reflect-metadata');
  return { common: rootRequire('@nestjs/common'), core: rootRequire('@nestjs/core') };
}

export function create(): Adapter {
  const { common, core } = loadNest();
  const { Injectable, Inject, Module, Scope } = common;

  let o: SetupOptions;
  let app: NestCommon.INestApplicationContext;
  let client: any;
  let sink = 0; // keeps the TrackContext reads from being optimised away

  return {
    async setup(options) {
      o = options;
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const lib = require(ROOT);
      const off = (process.env.BENCH_OURS_AMQPLIB ?? '').split(',');
      const switches = ['no-frame-writer', 'no-direct-writes', 'no-coalesce'];
      if (off.some((name) => name !== '' && !switches.includes(name))) {
        throw new Error(`BENCH_OURS_AMQPLIB: ${process.env.BENCH_OURS_AMQPLIB} (expected some of ${switches.join(', ')})`);
      }
      if (off.length > 0 && off[0] !== '') {
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { amqplibShortcuts } = require(path.join(ROOT, 'dist/lib/transport/amqp/amqplib-shortcuts.js'));
        amqplibShortcuts.frameWriter = !off.includes('no-frame-writer');
        amqplibShortcuts.directWrites = !off.includes('no-direct-writes');
        amqplibShortcuts.coalesceWrites = !off.includes('no-coalesce');
      }

      /** One provider per queue (S8/S9 have up to 100), as an app with that many handlers has. */
      const handlerFor = (queue: string) => {
        @Injectable(o.variant === 'scoped' ? { scope: Scope.REQUEST } : undefined)
        class BenchHandler {
          constructor(@Inject(lib.TrackContext) private readonly track: any) {}

          // not `async`: a synchronous result (S1's no-op) may take the library's synchronous path
          @lib.MessageHandler({ queue, prefetch: o.prefetch, ...(o.queueType ? { queueType: o.queueType } : {}) })
          handle(payload: Msg) {
            if (o.variant === 'track') {
              sink += (this.track.requestId?.length ?? 0) + (this.track.get('tenant')?.length ?? 0);
            }
            return o.handler(payload);
          }
        }
        return BenchHandler;
      };

      const passThrough = { intercept: (_context: unknown, next: NestCommon.CallHandler) => next.handle() };
      const enhancers = process.env.BENCH_OURS_GLOBAL_INTERCEPTOR === '1' ? [{ provide: core.APP_INTERCEPTOR, useValue: passThrough }] : [];
      const metrics = () =>
        process.env.BENCH_OURS_METRICS === 'prometheus'
          ? { metrics: { prometheus: { registry: new (rootRequire('prom-client').Registry)() } } }
          : {};

      @Module({
        imports: [
          lib.MessagingModule.forRoot({
            uri: o.url,
            prefetch: o.prefetch,
            ...(o.connectionName ? { serviceName: o.connectionName } : {}),
            ...metrics(),
          }),
        ],
        providers: [...(o.queues ?? [o.queue]).map(handlerFor), ...enhancers],
      })
      class BenchModule {}

      app = await core.NestFactory.createApplicationContext(BenchModule, { logger: false });
      await app.init();
      client = app.get(lib.RpcClient);
    },

    publishOne(payload: Msg, queue = o.queue) {
      return client.send(queue, payload, { persistent: o.persistent });
    },

    request(payload: Msg) {
      return client.request(o.queue, payload);
    },

    async close() {
      await app.close();
      if (sink < 0) console.log(sink);
    },
  };
}
