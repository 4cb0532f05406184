/**
 * @nestjs/microservices RMQ transport: createMicroservice(Transport.RMQ) with `noAck: false` and a
 * manual ack in each handler; ClientRMQ (ClientsModule) emit / send. Socket options go through
 * `socketOptions.connectionOptions` (amqp-connection-manager, passed to amqplib's connect) on both
 * the server and the client.
 */
import 'reflect-metadata';
import { Controller, INestMicroservice, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientRMQ,
  ClientsModule,
  Ctx,
  EventPattern,
  MessagePattern,
  MicroserviceOptions,
  Payload,
  RmqContext,
  Transport,
} from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { Adapter, Msg, SetupOptions } from './types';

const CLIENT = 'BENCH_CLIENT';
const EVENT = 'bench.event';
const RPC = 'bench.rpc';

export function create(): Adapter {
  let o: SetupOptions;
  let app: INestMicroservice;
  let client: ClientRMQ;

  return {
    async setup(options) {
      o = options;
      const socketOptions = o.noDelay ? { connectionOptions: { noDelay: true } } : undefined;
      // the server and the client both declare the queue, with the same arguments
      const queueOptions = { durable: true, ...(o.queueType ? { arguments: { 'x-queue-type': o.queueType } } : {}) };

      @Controller()
      class BenchController {
        @EventPattern(EVENT)
        async onEvent(@Payload() payload: Msg, @Ctx() ctx: RmqContext) {
          await o.handler(payload);
          ctx.getChannelRef().ack(ctx.getMessage());
        }

        @MessagePattern(RPC)
        async onRequest(@Payload() payload: Msg, @Ctx() ctx: RmqContext) {
          const result = await o.handler(payload);
          ctx.getChannelRef().ack(ctx.getMessage());
          return result;
        }
      }

      @Module({
        imports: [
          ClientsModule.register([
            {
              name: CLIENT,
              transport: Transport.RMQ,
              options: { urls: [o.url], queue: o.queue, queueOptions, persistent: o.persistent, socketOptions },
            },
          ]),
        ],
        controllers: [BenchController],
      })
      class BenchModule {}

      app = await NestFactory.createMicroservice<MicroserviceOptions>(BenchModule, {
        transport: Transport.RMQ,
        options: {
          urls: [o.url],
          queue: o.queue,
          queueOptions,
          noAck: false,
          prefetchCount: o.prefetch,
          socketOptions,
        },
        logger: false,
      });
      await app.listen();
      client = app.get<ClientRMQ>(CLIENT);
      await client.connect();
    },

    publishOne(payload: Msg) {
      return lastValueFrom(client.emit(EVENT, payload));
    },

    request(payload: Msg) {
      return lastValueFrom(client.send(RPC, payload));
    },

    async close() {
      await app.close();
    },
  };
}
