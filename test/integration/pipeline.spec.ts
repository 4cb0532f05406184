import {
  type ArgumentsHost,
  type CallHandler,
  type CanActivate,
  Catch,
  createParamDecorator,
  type ExceptionFilter,
  type ExecutionContext,
  Inject,
  Injectable,
  type NestInterceptor,
  Scope,
  UseFilters,
  UseGuards,
  UseInterceptors,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR, APP_PIPE, NestFactory, REQUEST } from '@nestjs/core';
import { IsInt, IsString, Min } from 'class-validator';
import type { Message } from '../../lib/transport/transport.interface';
import { map, type Observable } from 'rxjs';
import * as lib from '../../lib';
import { MessageHandler, RpcClient, RpcRemoteError, TrackContext, UnrecoverableError, type MessageContext } from '../../lib';
import { appModule, appsUnderTest, testLogger } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';

/**
 * Nest's handler pipeline on @MessageHandler methods against a real broker: global and local
 * guards, pipes (ValidationPipe on DTOs), interceptors and exception filters, the param
 * decorators, request-scoped enhancers, and the outcome of each (reply, ack, dead-letter at once).
 * Classes are declared inside each test so that each case stands or falls on its own.
 */

// The param decorators, read from the public surface (each test fails alone while one is missing).
const { Payload, MessageCtx, MessageHeader } = lib as unknown as {
  Payload: (property?: string, ...pipes: unknown[]) => ParameterDecorator;
  MessageCtx: () => ParameterDecorator;
  MessageHeader: (name?: string) => ParameterDecorator;
};

class PlaceOrderDto {
  @IsString()
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;
}

/** Retries are on: a refused message must still go to the dead-letter queue on its first try. */
const RETRY = { attempts: 3, delaysMs: [0] };

describe("Nest's handler pipeline on message handlers", () => {
  const apps = appsUnderTest();
  let broker: Broker;

  beforeAll(async () => {
    broker = await Broker.open();
  });
  afterAll(async () => {
    await broker.cleanup();
  });

  /** Waits for `count` dead letters of `queue` and takes them off the queue. */
  async function deadLetters(queue: string, count: number): Promise<Message[]> {
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === count, `${count} dead letter(s) in ${queue}.dlq`);
    return broker.drainQueue(`${queue}.dlq`);
  }

  const decoded = (msg: Message) => JSON.parse(msg.content.toString()) as unknown;

  it('APP_INTERCEPTOR applies to messages, with an ExecutionContext of type "amqp"; an HTTP-only APP_GUARD skips them', async () => {
    const queue = broker.queue(unique('pipe-global'));
    const seen: Array<{ type: string; data: unknown; queue: string; handler: string; className: string }> = [];
    const handled: unknown[] = [];

    @Injectable()
    class RecordingInterceptor implements NestInterceptor {
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        const rpc = context.switchToRpc();
        seen.push({
          type: context.getType(),
          data: rpc.getData(),
          queue: rpc.getContext<MessageContext>().queue,
          handler: context.getHandler().name,
          className: context.getClass().name,
        });
        return next.handle();
      }
    }

    /** Guards HTTP routes only: anything else passes. */
    @Injectable()
    class HttpOnlyGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        if (context.getType() !== 'http') return true;
        return false;
      }
    }

    @Injectable()
    class Orders {
      @MessageHandler({ queue, retry: RETRY })
      place(payload: unknown) {
        handled.push(payload);
      }
    }

    const app = await apps.start(
      appModule(
        {},
        {
          providers: [
            Orders,
            { provide: APP_INTERCEPTOR, useClass: RecordingInterceptor },
            { provide: APP_GUARD, useClass: HttpOnlyGuard },
          ],
        },
      ),
    );
    await app.get(RpcClient).send(queue, { n: 1 });
    await waitFor(() => handled.length === 1, 'the message handled');
    expect(seen).toEqual([{ type: 'amqp', data: { n: 1 }, queue, handler: 'place', className: 'Orders' }]);
  });

  it('a guard reading x-track-tenant from TrackContext admits one message and dead-letters another at once', async () => {
    const queue = broker.queue(unique('pipe-guard'));
    const handled: unknown[] = [];

    @Injectable()
    class TenantGuard implements CanActivate {
      constructor(private readonly track: TrackContext) {}
      canActivate(): boolean {
        return this.track.get('tenant') === 'acme';
      }
    }

    @Injectable()
    class Orders {
      @MessageHandler({ queue, retry: RETRY })
      @UseGuards(TenantGuard)
      place(payload: { n: number }) {
        handled.push(payload.n);
        return { ok: payload.n };
      }
    }

    const app = await apps.start(appModule({}, { providers: [Orders, TenantGuard] }));
    const client = app.get(RpcClient);
    await client.send(queue, { n: 1 }, { headers: { 'x-track-tenant': 'acme' } });
    await client.send(queue, { n: 2 }, { headers: { 'x-track-tenant': 'evil' } });
    const [dead] = await deadLetters(queue, 1);
    expect(decoded(dead)).toEqual({ n: 2 });
    expect(dead.properties.headers).toMatchObject({
      'x-error-name': 'ForbiddenException',
      'x-error-message': 'Forbidden resource',
      'x-attempts': 1,
      'x-original-queue': queue,
    });
    await waitFor(() => handled.length === 1, 'the admitted message handled');
    expect(handled).toEqual([1]);

    // A request is refused the same way: the caller learns why.
    await expect(client.request(queue, { n: 3 }, { timeoutMs: 5000, headers: { 'x-track-tenant': 'acme' } })).resolves.toEqual({ ok: 3 });
    const refused = await client
      .request(queue, { n: 4 }, { timeoutMs: 5000, headers: { 'x-track-tenant': 'evil' } })
      .catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcRemoteError);
    expect(refused).toMatchObject({ remoteName: 'ForbiddenException', message: 'Forbidden resource' });
    expect(handled).toEqual([1, 3]);
  });

  it('ValidationPipe({ whitelist: true, forbidNonWhitelisted: true }) on a DTO: valid payloads arrive as the DTO, invalid ones are dead-lettered at once (one-way) or answered with the messages (request)', async () => {
    const queue = broker.queue(unique('pipe-dto'));
    const handled: unknown[] = [];

    @Injectable()
    class Orders {
      @MessageHandler({ queue, retry: RETRY })
      @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
      place(@Payload() order: PlaceOrderDto, @MessageCtx() context: MessageContext) {
        handled.push({ dto: order instanceof PlaceOrderDto, order: { ...order }, queue: context.queue });
        return { placed: order.quantity };
      }
    }

    const app = await apps.start(appModule({}, { providers: [Orders] }));
    const client = app.get(RpcClient);
    await client.send(queue, { sku: 'a', quantity: 2 });
    await client.send(queue, { sku: 'b', quantity: 0, extra: true });
    const [dead] = await deadLetters(queue, 1);
    expect(decoded(dead)).toEqual({ sku: 'b', quantity: 0, extra: true });
    expect(dead.properties.headers).toMatchObject({ 'x-error-name': 'BadRequestException', 'x-attempts': 1 });
    const reason = String(dead.properties.headers?.['x-error-message']);
    expect(reason).toContain('property extra should not exist');
    expect(reason).toContain('quantity must not be less than 1');
    await waitFor(() => handled.length === 1, 'the valid message handled');
    expect(handled).toEqual([{ dto: true, order: { sku: 'a', quantity: 2 }, queue }]);

    await expect(client.request(queue, { sku: 'c', quantity: 3 }, { timeoutMs: 5000 })).resolves.toEqual({ placed: 3 });
    const refused = await client.request(queue, { sku: 7 }, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(RpcRemoteError);
    expect((refused as RpcRemoteError).remoteName).toBe('BadRequestException');
    expect((refused as RpcRemoteError).message).toContain('sku must be a string');
    expect((refused as RpcRemoteError).message).toContain('quantity must be an integer number');
    expect(handled).toHaveLength(2);
  });

  it('the (payload, context) form with @UsePipes(new ValidationPipe()): the payload is validated against its declared class', async () => {
    const queue = broker.queue(unique('pipe-plain'));
    const handled: unknown[] = [];

    @Injectable()
    class Orders {
      @MessageHandler({ queue, retry: RETRY })
      @UsePipes(new ValidationPipe())
      place(order: PlaceOrderDto, context: MessageContext) {
        handled.push({ order, queue: context.queue, attempt: context.attempt });
      }
    }

    const app = await apps.start(appModule({}, { providers: [Orders] }));
    const client = app.get(RpcClient);
    await client.send(queue, { sku: 'x', quantity: 'many' });
    await client.send(queue, { sku: 'y', quantity: 1 });
    const [dead] = await deadLetters(queue, 1);
    expect(dead.properties.headers).toMatchObject({ 'x-error-name': 'BadRequestException', 'x-attempts': 1 });
    expect(String(dead.properties.headers?.['x-error-message'])).toContain('quantity must be an integer number');
    await waitFor(() => handled.length === 1, 'the valid message handled');
    expect(handled).toEqual([{ order: { sku: 'y', quantity: 1 }, queue, attempt: 1 }]);
  });

  it('@Payload(property), @MessageCtx(), @MessageHeader(name) and a createParamDecorator pick parts of the message; a global APP_PIPE sees the property', async () => {
    const queue = broker.queue(unique('pipe-params'));
    const piped: unknown[] = [];
    const Attempt = createParamDecorator((_data: unknown, context: ExecutionContext) => ({
      type: context.getType(),
      attempt: context.switchToRpc().getContext<MessageContext>().attempt,
    }));

    @Injectable()
    class RecordingPipe {
      transform(value: unknown, metadata: { type: string; data?: string }) {
        piped.push({ value, type: metadata.type, data: metadata.data });
        return value;
      }
    }

    @Injectable()
    class Orders {
      @MessageHandler({ queue })
      place(
        @Payload('sku') sku: string,
        @MessageHeader('x-tenant') tenant: string,
        @MessageCtx() context: MessageContext,
        @MessageHeader() headers: Record<string, unknown>,
        @Attempt() attempt: { type: string; attempt: number },
      ) {
        return { sku, tenant, queue: context.queue, headerTenant: headers['x-tenant'], attempt };
      }
    }

    const app = await apps.start(appModule({}, { providers: [Orders, { provide: APP_PIPE, useClass: RecordingPipe }] }));
    const reply = await app.get(RpcClient).request(queue, { sku: 'k-1', quantity: 1 }, { timeoutMs: 5000, headers: { 'x-tenant': 't1' } });
    expect(reply).toEqual({ sku: 'k-1', tenant: 't1', queue, headerTenant: 't1', attempt: { type: 'amqp', attempt: 1 } });
    expect(piped).toContainEqual({ value: 'k-1', type: 'body', data: 'sku' });
  });

  it('an interceptor maps the reply', async () => {
    const queue = broker.queue(unique('pipe-map'));

    @Injectable()
    class Envelope implements NestInterceptor {
      intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
        return next.handle().pipe(map((data) => ({ data, at: 'envelope' })));
      }
    }

    @Injectable()
    class Prices {
      @MessageHandler({ queue })
      @UseInterceptors(Envelope)
      quote(payload: { sku: string }) {
        return { sku: payload.sku, price: 10 };
      }
    }

    const app = await apps.start(appModule({}, { providers: [Prices] }));
    await expect(app.get(RpcClient).request(queue, { sku: 's' }, { timeoutMs: 5000 })).resolves.toEqual({
      data: { sku: 's', price: 10 },
      at: 'envelope',
    });
  });

  it('an exception filter turns an error into a reply (acked, not retried) or into UnrecoverableError (dead-lettered at once)', async () => {
    const queue = broker.queue(unique('pipe-filter'));
    const fatalQueue = broker.queue(unique('pipe-filter-fatal'));
    const unmatchedQueue = broker.queue(unique('pipe-filter-unmatched'));
    let calls = 0;

    class OutOfStock extends Error {
      override name = 'OutOfStock';
    }

    @Catch(OutOfStock)
    class OutOfStockAsReply implements ExceptionFilter {
      catch(error: OutOfStock, host: ArgumentsHost) {
        return { refused: error.message, type: host.getType(), sku: host.switchToRpc().getData<{ sku: string }>().sku };
      }
    }

    @Catch()
    class EverythingUnrecoverable implements ExceptionFilter {
      catch(error: Error): never {
        throw new UnrecoverableError(`given up: ${error.message}`);
      }
    }

    @Injectable()
    class Stock {
      @MessageHandler({ queue, retry: RETRY })
      @UseFilters(OutOfStockAsReply)
      reserve(payload: { sku: string }) {
        calls++;
        throw new OutOfStock(`no ${payload.sku}`);
      }

      @MessageHandler({ queue: fatalQueue, retry: RETRY })
      @UseFilters(EverythingUnrecoverable)
      fatal() {
        calls++;
        throw new Error('boom');
      }

      @MessageHandler({ queue: unmatchedQueue, retry: false })
      @UseFilters(OutOfStockAsReply)
      unmatched() {
        calls++;
        throw new Error('not for that filter');
      }
    }

    const logger = new CaptureLogger();
    const app = await NestFactory.createApplicationContext(appModule({}, { providers: [Stock] }), { logger, abortOnError: false });
    onTestFinished(() => app.close());
    await app.init();
    const client = app.get(RpcClient);
    await expect(client.request(queue, { sku: 'z' }, { timeoutMs: 5000 })).resolves.toEqual({ refused: 'no z', type: 'amqp', sku: 'z' });
    await client.send(queue, { sku: 'w' });
    await waitFor(() => calls === 2, 'the one-way message handled');
    await client.send(fatalQueue, {});
    const [dead] = await deadLetters(fatalQueue, 1);
    expect(dead.properties.headers).toMatchObject({
      'x-error-name': 'UnrecoverableError',
      'x-error-message': 'given up: boom',
      'x-attempts': 1,
    });
    expect(calls).toBe(3);
    expect(await broker.depth(`${queue}.dlq`)).toBe(0);
    expect(await broker.depth(queue)).toBe(0);

    // An error no filter catches follows the normal path, logged once (by the library, with the request id).
    await client.send(unmatchedQueue, {});
    const [unmatched] = await deadLetters(unmatchedQueue, 1);
    expect(unmatched.properties.headers).toMatchObject({ 'x-error-name': 'Error', 'x-error-message': 'not for that filter' });
    await waitFor(() => logger.find('not for that filter').length > 0, 'the failure logged');
    expect(logger.find('not for that filter').map((line) => line.context)).toEqual(['Messaging']);
  });

  it('a request-scoped interceptor gets one instance per message, with the message as its REQUEST', async () => {
    const queue = broker.queue(unique('pipe-scoped'));
    const seen: Array<{ instance: number; messageId?: string; payload: unknown }> = [];
    let created = 0;

    @Injectable({ scope: Scope.REQUEST })
    class PerMessage implements NestInterceptor {
      private readonly instance = ++created;
      constructor(@Inject(REQUEST) private readonly message: MessageContext) {}
      intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
        seen.push({ instance: this.instance, messageId: this.message.messageId, payload: context.switchToRpc().getData() });
        return next.handle().pipe(map((value) => ({ value, instance: this.instance })));
      }
    }

    @Injectable()
    class Worker {
      @MessageHandler({ queue })
      @UseInterceptors(PerMessage)
      work(payload: { n: number }) {
        return payload.n * 2;
      }
    }

    const app = await apps.start(appModule({}, { providers: [Worker] }));
    const client = app.get(RpcClient);
    const replies = await Promise.all(
      [1, 2, 3].map((n) => client.request<{ value: number; instance: number }>(queue, { n }, { timeoutMs: 5000 })),
    );
    expect(replies.map((r) => r.value)).toEqual([2, 4, 6]);
    expect(new Set(replies.map((r) => r.instance)).size).toBe(3);
    expect(new Set(seen.map((s) => s.instance)).size).toBe(3);
    expect(seen.every((s) => typeof s.messageId === 'string')).toBe(true);
  });

  it('useGlobalPipes and useGlobalInterceptors of an HTTP app, and a request-scoped APP_INTERCEPTOR, apply to messages', async () => {
    const queue = broker.queue(unique('pipe-use-global'));
    const perMessage = new Set<number>();
    let created = 0;

    @Injectable({ scope: Scope.REQUEST })
    class ScopedGlobal implements NestInterceptor {
      private readonly instance = ++created;
      intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
        perMessage.add(this.instance);
        return next.handle();
      }
    }

    @Injectable()
    class Orders {
      @MessageHandler({ queue })
      place(order: PlaceOrderDto) {
        return { quantity: order.quantity };
      }
    }

    const app = await NestFactory.create(appModule({}, { providers: [Orders, { provide: APP_INTERCEPTOR, useClass: ScopedGlobal }] }), {
      logger: testLogger(),
      abortOnError: false,
    });
    onTestFinished(() => app.close());
    app.useGlobalPipes(new ValidationPipe());
    app.useGlobalInterceptors({
      intercept: (_context: ExecutionContext, next: CallHandler) => next.handle().pipe(map((value) => ({ value }))),
    });
    await app.init();
    const client = app.get(RpcClient);
    await expect(client.request(queue, { sku: 'a', quantity: 1 }, { timeoutMs: 5000 })).resolves.toEqual({ value: { quantity: 1 } });
    await expect(client.request(queue, { sku: 'a', quantity: 2 }, { timeoutMs: 5000 })).resolves.toEqual({ value: { quantity: 2 } });
    await expect(client.request(queue, { sku: 'a' }, { timeoutMs: 5000 })).rejects.toMatchObject({ remoteName: 'BadRequestException' });
    expect(perMessage.size).toBe(3);
  });

  it('a request-scoped handler class with a guard and a pipe keeps working per message', async () => {
    const queue = broker.queue(unique('pipe-scoped-class'));
    let created = 0;

    @Injectable()
    class TenantGuard implements CanActivate {
      constructor(private readonly track: TrackContext) {}
      canActivate(): boolean {
        return this.track.get('tenant') !== undefined;
      }
    }

    @Injectable({ scope: Scope.REQUEST })
    class Worker {
      private readonly instance = ++created;
      constructor(@Inject(REQUEST) private readonly message: MessageContext) {}

      @MessageHandler({ queue })
      @UseGuards(TenantGuard)
      @UsePipes(new ValidationPipe())
      work(order: PlaceOrderDto) {
        return { instance: this.instance, quantity: order.quantity, queue: this.message.queue };
      }
    }

    const app = await apps.start(appModule({}, { providers: [Worker, TenantGuard] }));
    const client = app.get(RpcClient);
    const headers = { 'x-track-tenant': 'acme' };
    const first = await client.request<{ instance: number }>(queue, { sku: 'a', quantity: 1 }, { timeoutMs: 5000, headers });
    const second = await client.request<{ instance: number }>(queue, { sku: 'a', quantity: 2 }, { timeoutMs: 5000, headers });
    expect(first).toMatchObject({ quantity: 1, queue });
    expect(second).toMatchObject({ quantity: 2, queue });
    expect(first.instance).not.toBe(second.instance);
    await expect(client.request(queue, { sku: 'a', quantity: 1 }, { timeoutMs: 5000 })).rejects.toMatchObject({
      remoteName: 'ForbiddenException',
    });
    await expect(client.request(queue, { sku: 'a', quantity: -1 }, { timeoutMs: 5000, headers })).rejects.toMatchObject({
      remoteName: 'BadRequestException',
    });
  });
});
