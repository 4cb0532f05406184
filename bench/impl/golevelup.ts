/**
 * @golevelup/nestjs-rabbitmq 9.x: RabbitMQModule.forRoot, @RabbitSubscribe / @RabbitRPC on a
 * provider, AmqpConnection.publish / request. Socket options go through amqp-connection-manager's
 * `connectionManagerOptions.connectionOptions` (passed to amqplib's connect).
 */
import 'reflect-metadata';
import { INestApplicationContext, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { AmqpConnection, RabbitMQModule, RabbitRPC, RabbitSubscribe } from '@golevelup/nestjs-rabbitmq';
import { Adapter, Msg, SetupOptions } from './types';

export function create(): Adapter {
  let o: SetupOptions;
  let app: INestApplicationContext;
  let amqp: AmqpConnection;

  return {
    async setup(options) {
      o = options;
      const queueOptions = { durable: true, ...(o.queueType ? { arguments: { 'x-queue-type': o.queueType } } : {}) };
      // Published to the default exchange, so the routing key is the queue name.
      const decorator = o.rpc
        ? RabbitRPC({ queue: o.queue, routingKey: o.queue, queueOptions })
        : RabbitSubscribe({ queue: o.queue, queueOptions });

      @Injectable()
      class BenchHandler {
        @decorator
        async handle(payload: Msg) {
          const result = await o.handler(payload);
          return o.rpc ? result : undefined; // subscribe handlers must return void
        }
      }

      @Module({
        imports: [
          RabbitMQModule.forRoot({
            uri: o.url,
            prefetchCount: o.prefetch,
            connectionManagerOptions: o.noDelay ? { connectionOptions: { noDelay: true } } : {},
            connectionInitOptions: { wait: true, timeout: 10_000 },
          }),
        ],
        providers: [BenchHandler],
      })
      class BenchModule {}

      app = await NestFactory.createApplicationContext(BenchModule, { logger: false });
      await app.init();
      amqp = app.get(AmqpConnection);
    },

    publishOne(payload: Msg) {
      return amqp.publish('', o.queue, payload, { persistent: o.persistent });
    },

    request(payload: Msg) {
      return amqp.request({ exchange: '', routingKey: o.queue, payload, timeout: 30_000 });
    },

    async close() {
      await app.close();
    },
  };
}
