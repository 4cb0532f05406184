import { Controller, Injectable, Module, type INestApplicationContext, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ClientProxyFactory,
  type ClientProxy,
  Ctx,
  EventPattern,
  MessagePattern,
  Payload as NestPayload,
  RmqContext,
  RpcException,
  Transport,
} from '@nestjs/microservices';
import { ClsServiceManager } from 'nestjs-cls';
import { firstValueFrom, lastValueFrom, timeout, TimeoutError } from 'rxjs';
import {
  MessageHandler,
  RpcClient,
  RpcRemoteError,
  RpcTimeoutError,
  TrackContext,
  UnrecoverableError,
  type MessageContext,
} from '../../lib';
import { appModule, startApp, testLogger } from '../support/app';
import { AMQP_URL, Broker, deferred, unique, waitFor } from '../support/broker';

/**
 * Wire compatibility with Nest's own RMQ transport, against the real @nestjs/microservices (11 on
 * one CI leg, 12 on the other): a Nest ClientRMQ calls and emits to our handlers, and our RpcClient
 * calls and emits to a Nest ServerRMQ, with errors and timeouts both ways. RabbitMQ only: Nest's
 * transport speaks amqplib.
 */
describe('Nest RMQ interop', () => {
  let broker: Broker;
  const apps: Array<INestApplicationContext | INestMicroservice> = [];
  const clients: ClientProxy[] = [];

  beforeAll(async () => (broker = await Broker.open()));
  afterEach(async () => {
    // Nest's client may find its channel already closed by amqp-connection-manager: not ours to test.
    for (const client of clients.splice(0)) await client.close().catch(() => undefined);
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => broker.cleanup());

  /** A Nest ClientRMQ on `queue`, as a service that has not moved yet has it (the queue is ours: not asserted). */
  function nestClient(queue: string): ClientProxy {
    const client = ClientProxyFactory.create({ transport: Transport.RMQ, options: { urls: [AMQP_URL], queue, noAssert: true } });
    clients.push(client);
    return client;
  }

  describe('a Nest ClientRMQ calls our handlers', () => {
    it('gets the result of send(), the handler picked by pattern, with the packet data as payload', async () => {
      const queue = broker.queue(unique('nest-in'));
      const seen: Array<{ payload: unknown; pattern?: string }> = [];
      @Injectable()
      class MathHandlers {
        @MessageHandler({ queue, format: 'nest-rmq', pattern: 'sum' })
        sum(numbers: number[], context: MessageContext) {
          seen.push({ payload: numbers, pattern: context.pattern });
          return numbers.reduce((a, b) => a + b, 0);
        }

        @MessageHandler({ queue, format: 'nest-rmq', pattern: { cmd: 'max', v: 1 } })
        max(numbers: number[]) {
          return Math.max(...numbers);
        }
      }
      apps.push(await startApp(appModule({ serviceName: 'nest-in' }, { providers: [MathHandlers] })));
      const client = nestClient(queue);
      await expect(firstValueFrom(client.send('sum', [1, 2, 3]))).resolves.toBe(6);
      // An object pattern is matched as Nest routes it: key order does not matter.
      await expect(lastValueFrom(client.send({ v: 1, cmd: 'max' }, [4, 9, 2]))).resolves.toBe(9);
      expect(seen).toEqual([{ payload: [1, 2, 3], pattern: 'sum' }]);
    });

    it("errors the caller's Observable when the handler throws, and when no handler takes the pattern", async () => {
      const queue = broker.queue(unique('nest-in-err'));
      @Injectable()
      class Failing {
        @MessageHandler({ queue, format: 'nest-rmq', pattern: 'divide' })
        divide([a, b]: number[]) {
          if (b === 0) throw new UnrecoverableError('division by zero');
          return a / b;
        }
      }
      apps.push(await startApp(appModule({ serviceName: 'nest-in-err' }, { providers: [Failing] })));
      const client = nestClient(queue);
      await expect(firstValueFrom(client.send('divide', [1, 0]))).rejects.toMatchObject({ status: 'error', message: 'division by zero' });
      await expect(firstValueFrom(client.send('unknown', [1]))).rejects.toMatchObject({ status: 'error', name: 'NoHandlerError' });
    });

    it("times out the Nest caller's Observable when the handler answers too late", async () => {
      const queue = broker.queue(unique('nest-in-slow'));
      const answered = deferred();
      @Injectable()
      class Slow {
        @MessageHandler({ queue, format: 'nest-rmq', pattern: 'slow' })
        async slow() {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          setImmediate(answered.resolve);
          return 'late';
        }
      }
      apps.push(await startApp(appModule({ serviceName: 'nest-in-slow' }, { providers: [Slow] })));
      await expect(firstValueFrom(nestClient(queue).send('slow', {}).pipe(timeout(300)))).rejects.toBeInstanceOf(TimeoutError);
      await answered.promise;
    });

    it('takes emit() as an event: the handler runs, nothing is answered', async () => {
      const queue = broker.queue(unique('nest-in-event'));
      const got = deferred<unknown>();
      @Injectable()
      class Audit {
        @MessageHandler({ queue, format: 'nest-rmq', pattern: 'user.created' })
        created(user: unknown) {
          got.resolve(user);
        }
      }
      apps.push(await startApp(appModule({ serviceName: 'nest-in-event' }, { providers: [Audit] })));
      await lastValueFrom(nestClient(queue).emit('user.created', { id: 7 }), { defaultValue: undefined });
      await expect(got.promise).resolves.toEqual({ id: 7 });
    });
  });

  describe('our RpcClient calls a Nest ServerRMQ', () => {
    /** A Nest microservice on Transport.RMQ consuming `queue`, as the service that has not moved yet. */
    async function nestServer(queue: string, controller: new (...args: never[]) => unknown): Promise<void> {
      @Module({ controllers: [controller] })
      class ServerModule {}
      const server = await NestFactory.createMicroservice(ServerModule, {
        transport: Transport.RMQ,
        options: { urls: [AMQP_URL], queue, queueOptions: { durable: true } },
        logger: testLogger(),
      });
      await server.listen();
      apps.push(server);
    }

    it('requests a @MessagePattern handler and gets its result, with our TrackContext headers on the way', async () => {
      const queue = broker.queue(unique('nest-out'));
      const headers = deferred<Record<string, unknown>>();
      @Controller()
      class MathController {
        @MessagePattern({ cmd: 'sum' })
        sum(@NestPayload() numbers: number[], @Ctx() context: RmqContext) {
          headers.resolve(context.getMessage().properties.headers);
          return numbers.reduce((a, b) => a + b, 0);
        }
      }
      await nestServer(queue, MathController);
      const app = await startApp(appModule({ serviceName: 'nest-out' }));
      apps.push(app);
      const rpc = app.get(RpcClient);
      const track = app.get(TrackContext);
      const answer = await ClsServiceManager.getClsService().run(() => {
        track.set('tenant', 'acme');
        return rpc.request(queue, [2, 3, 4], { format: 'nest-rmq', pattern: { cmd: 'sum' } });
      });
      expect(answer).toBe(9);
      expect(await headers.promise).toMatchObject({ 'x-track-tenant': 'acme' });
    });

    it('rejects with RpcRemoteError when the Nest handler throws, and with RpcTimeoutError when it never answers', async () => {
      const queue = broker.queue(unique('nest-out-err'));
      @Controller()
      class Grumpy {
        @MessagePattern('fail')
        fail() {
          throw new RpcException('not today');
        }

        @MessagePattern('slow')
        async slow() {
          await new Promise((resolve) => setTimeout(resolve, 1_000));
          return 'late';
        }
      }
      await nestServer(queue, Grumpy);
      const app = await startApp(appModule({ serviceName: 'nest-out-err' }));
      apps.push(app);
      const rpc = app.get(RpcClient);
      const dropped = rpc.droppedReplies;
      const failed = await rpc.request(queue, {}, { format: 'nest-rmq', pattern: 'fail' }).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(RpcRemoteError);
      expect((failed as Error).message).toBe('not today');
      await expect(rpc.request(queue, {}, { format: 'nest-rmq', pattern: 'slow', timeoutMs: 300 })).rejects.toBeInstanceOf(RpcTimeoutError);
      const unknown = await rpc.request(queue, {}, { format: 'nest-rmq', pattern: 'nobody' }).catch((error: unknown) => error);
      expect((unknown as Error).message).toMatch(/no matching message handler/);
      // The late answer arrives (and is dropped) before the Nest server closes: closing with it
      // unconfirmed rejects a promise Nest's sendToQueue never awaits.
      await waitFor(() => rpc.droppedReplies > dropped, 'the late answer of "slow"');
    });

    it('reaches an @EventPattern handler with send() and publish()', async () => {
      const queue = broker.queue(unique('nest-out-event'));
      const events: unknown[] = [];
      @Controller()
      class Listener {
        @EventPattern('order.shipped')
        shipped(@NestPayload() order: unknown) {
          events.push(order);
        }
      }
      await nestServer(queue, Listener);
      const app = await startApp(appModule({ serviceName: 'nest-out-event' }));
      apps.push(app);
      const rpc = app.get(RpcClient);
      await rpc.send(queue, { id: 1 }, { format: 'nest-rmq', pattern: 'order.shipped' });
      await rpc.publish('', queue, { id: 2 }, { format: 'nest-rmq', pattern: 'order.shipped' });
      await waitFor(() => events.length === 2, 'both events handled by the Nest server');
      expect(events).toEqual([{ id: 1 }, { id: 2 }]);
    });
  });
});
