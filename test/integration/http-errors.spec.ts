import { BadRequestException, Controller, Get, Injectable, Module, NotFoundException, Param, type INestApplication } from '@nestjs/common';
import { APP_FILTER, NestFactory } from '@nestjs/core';
import type { AddressInfo } from 'node:net';
import { MessageHandler, MessagingHttpExceptionFilter, MessagingModule, RpcClient } from '../../lib';
import { testLogger } from '../support/app';
import { Broker, BROKER_URL, unique } from '../support/broker';

/**
 * MessagingHttpExceptionFilter in a real HTTP app: a controller that sends lets the messaging
 * errors through, and the caller gets the status they mean.
 */
describe('messaging errors as HTTP answers', () => {
  const quotes = unique('http-quotes');
  const slow = unique('http-slow');
  let broker: Broker;
  let app: INestApplication;
  let base: string;

  @Injectable()
  class Handlers {
    @MessageHandler({ queue: quotes, retry: false })
    quote({ sku }: { sku: string }) {
      if (sku === 'missing') throw new NotFoundException(`No such SKU: ${sku}`);
      if (sku === 'broken') throw new Error('pricing database unreachable at 10.0.0.7');
      return { sku, price: 3 };
    }

    @MessageHandler({ queue: slow, retry: false })
    async slow() {
      await new Promise((resolve) => setTimeout(resolve, 1_000));
    }
  }

  @Controller()
  class Api {
    constructor(private readonly rpc: RpcClient) {}

    @Get('quote/:sku')
    quote(@Param('sku') sku: string) {
      return this.rpc.request(quotes, { sku });
    }

    @Get('slow')
    slowOne() {
      return this.rpc.request(slow, {}, { timeoutMs: 200 });
    }

    @Get('nowhere')
    nowhere() {
      return this.rpc.send(unique('http-no-such-queue'), {});
    }

    @Get('bad')
    bad() {
      throw new BadRequestException('not a messaging error');
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(quotes);
    broker.queue(slow);
    @Module({
      imports: [MessagingModule.forRoot({ uri: BROKER_URL, serviceName: 'http-errors' })],
      controllers: [Api],
      providers: [Handlers, { provide: APP_FILTER, useClass: MessagingHttpExceptionFilter }],
    })
    class HttpApp {}
    app = await NestFactory.create(HttpApp, { logger: testLogger(), abortOnError: false });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  const get = async (path: string) => {
    const response = await fetch(`${base}${path}`);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it.each([
    ['a result', '/quote/abc', 200, { sku: 'abc', price: 3 }],
    [
      "the remote handler's 4xx, with its message",
      '/quote/missing',
      404,
      { statusCode: 404, message: 'No such SKU: missing', error: 'Not Found' },
    ],
    [
      'a remote failure as 502, its message not shown',
      '/quote/broken',
      502,
      { statusCode: 502, message: 'Bad Gateway', error: 'Bad Gateway' },
    ],
    ['a timeout as 504', '/slow', 504, { statusCode: 504, error: 'Gateway Timeout' }],
    [
      'no queue as 503, its message not shown',
      '/nowhere',
      503,
      { statusCode: 503, message: 'Service Unavailable', error: 'Service Unavailable' },
    ],
    ['any other error as Nest answers it', '/bad', 400, { statusCode: 400, message: 'not a messaging error' }],
  ])('answers %s', async (_what, path, status, body) => {
    const answer = await get(path);
    expect(answer.status).toBe(status);
    expect(answer.body).toMatchObject(body);
  });
});
