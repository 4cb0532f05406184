import { Injectable, Module } from '@nestjs/common';
import {
  DeadLetters,
  MessageHandler,
  MessagingModule,
  RpcClient,
  SettlementError,
  TopologyError,
  UnroutableError,
  type MessageContext,
} from '../../lib';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, BROKER_URL, deferred, ON_MEMORY, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';

const header = (message: { properties: { headers?: Record<string, unknown> } }, name: string) => message.properties.headers?.[name];

describe('topology: bindings, shared queues, declare: false, names from configuration', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  it('binds one queue to several exchanges (bindings)', async () => {
    const queue = broker.queue(unique('bound'), []);
    const orders = broker.exchange(unique('orders'));
    const returns = broker.exchange(unique('returns'));
    const got: string[] = [];
    @Injectable()
    class Audit {
      @MessageHandler({
        queue,
        retry: false,
        bindings: [
          { exchange: orders, routingKey: 'order.*' },
          { exchange: returns, exchangeType: 'fanout' },
        ],
      })
      handle(_payload: unknown, context: MessageContext) {
        got.push(`${context.exchange}/${context.routingKey}`);
      }
    }
    const app = await apps.start(appModule({}, { providers: [Audit] }));
    const rpc = app.get(RpcClient);
    await rpc.publish(orders, 'order.created', {});
    await rpc.publish(orders, 'invoice.created', {}); // not bound
    await rpc.publish(returns, 'anything', {});
    await waitFor(() => got.length === 2, 'two messages');
    expect(got.sort()).toEqual([`${orders}/order.created`, `${returns}/anything`].sort());
  });

  it('shares a queue between handlers by routing key; a message for neither is dead-lettered with NoHandlerError', async () => {
    const queue = broker.queue(unique('by-key'), []);
    const exchange = broker.exchange(unique('shop'));
    const got: string[] = [];
    @Injectable()
    class Shop {
      @MessageHandler({ queue, exchange, routingKey: 'order.created', retry: false })
      created(payload: { n: number }) {
        got.push(`created ${payload.n}`);
      }

      @MessageHandler({ queue, exchange, routingKey: ['order.shipped', 'order.delivered'], retry: false })
      moved(payload: { n: number }, context: MessageContext) {
        got.push(`${context.routingKey} ${payload.n}`);
      }
    }
    const app = await apps.start(appModule({}, { providers: [Shop] }));
    const rpc = app.get(RpcClient);
    await rpc.publish(exchange, 'order.created', { n: 1 });
    await rpc.publish(exchange, 'order.delivered', { n: 2 });
    await rpc.send(queue, { n: 3 }); // straight to the queue: its routing key is the queue's name
    await waitFor(async () => got.length === 2 && (await broker.depth(`${queue}.dlq`)) === 1, 'two handled and one dead-lettered');
    expect(got.sort()).toEqual(['created 1', 'order.delivered 2']);
    const [dead] = await broker.drainQueue(`${queue}.dlq`);
    expect(JSON.parse(dead.content.toString())).toEqual({ n: 3 });
    expect(header(dead, 'x-error-name')).toBe('NoHandlerError');
    expect(String(header(dead, 'x-error-message'))).toContain(`routing key "${queue}"`);
  });

  it('shares a queue between handlers by message type (SendOptions.type); one of no known type is dead-lettered', async () => {
    const queue = broker.queue(unique('by-type'), []);
    const got: string[] = [];
    @Injectable()
    class Payments {
      @MessageHandler({ queue, messageType: 'refund', retry: false })
      refund(payload: { n: number }) {
        got.push(`refund ${payload.n}`);
      }

      @MessageHandler({ queue, messageType: 'chargeback', retry: false })
      chargeback(payload: { n: number }, context: MessageContext) {
        got.push(`${context.raw.properties.type} ${payload.n}`);
      }
    }
    const app = await apps.start(appModule({}, { providers: [Payments] }));
    const rpc = app.get(RpcClient);
    await rpc.send(queue, { n: 1 }, { type: 'refund' });
    await rpc.send(queue, { n: 2 }, { type: 'chargeback' });
    await rpc.send(queue, { n: 3 }, { type: 'mystery' });
    await rpc.send(queue, { n: 4 });
    await waitFor(async () => got.length === 2 && (await broker.depth(`${queue}.dlq`)) === 2, 'two handled and two dead-lettered');
    expect(got.sort()).toEqual(['chargeback 2', 'refund 1']);
    const dead = await broker.drainQueue(`${queue}.dlq`);
    expect(dead.map((m) => JSON.parse(m.content.toString()).n).sort()).toEqual([3, 4]);
    expect(dead.map((m) => header(m, 'x-error-name'))).toEqual(['NoHandlerError', 'NoHandlerError']);
  });

  it('refuses handlers picked by key and by type on one queue: a message can have both', async () => {
    const queue = broker.queue(unique('mixed'), []);
    const exchange = broker.exchange(unique('mixed-x'));
    @Injectable()
    class Mixed {
      @MessageHandler({ queue, exchange, routingKey: 'order.created' })
      created() {}

      @MessageHandler({ queue, messageType: 'refund' })
      refund() {}
    }
    await expect(apps.start(appModule({}, { providers: [Mixed] }))).rejects.toThrow(
      'a message can reach both Mixed.created (keys "order.created") and Mixed.refund (type "refund")',
    );
  });

  it('refuses at startup handlers of one queue that a message could reach both, naming them and what they take', async () => {
    const queue = broker.queue(unique('overlap'), []);
    const exchange = broker.exchange(unique('overlap-x'));
    @Injectable()
    class Overlap {
      @MessageHandler({ queue, exchange, routingKey: 'order.*' })
      any() {}

      @MessageHandler({ queue, exchange, routingKey: 'order.created' })
      created() {}
    }
    await expect(apps.start(appModule({}, { providers: [Overlap] }))).rejects.toThrow(
      `Queue "${queue}" has several handlers, but a message can reach both Overlap.any (keys "order.*") and Overlap.created (keys "order.created")`,
    );
  });

  it('declare: false consumes queues an operator declared, and declares nothing', async () => {
    const queue = broker.queue(unique('ops'), []);
    const exchange = broker.exchange(unique('ops-x'));
    await broker.channel.assertExchange(exchange, 'topic', { durable: true });
    await broker.channel.assertQueue(queue, { durable: true });
    await broker.channel.assertQueue(`${queue}.dlq`, { durable: true });
    await broker.channel.bindQueue(queue, exchange, 'job.#');
    const got: unknown[] = [];
    @Injectable()
    class Jobs {
      @MessageHandler({ queue, exchange, routingKey: 'job.#', retry: false })
      handle(payload: unknown) {
        got.push(payload);
      }
    }
    const app = await apps.start(appModule({ declare: false }, { providers: [Jobs] }));
    await app.get(RpcClient).publish(exchange, 'job.run', { go: 1 });
    await waitFor(() => got.length === 1, 'the job');
    expect(got).toEqual([{ go: 1 }]);
  });

  it('declare: false fails at startup naming every queue and exchange that is missing', async () => {
    const queue = broker.queue(unique('nothing'));
    const exchange = unique('nothing-x');
    @Injectable()
    class Missing {
      @MessageHandler({ queue, exchange, declare: false })
      handle() {}
    }
    const failure = apps.start(appModule({}, { providers: [Missing] }));
    await expect(failure).rejects.toBeInstanceOf(TopologyError);
    await expect(failure).rejects.toThrow(
      `Missing.handle has "declare: false" but RabbitMQ has no exchange "${exchange}", queue "${queue}", queue "${queue}.dlq", ` +
        `queue "${queue}.retry.1000ms", queue "${queue}.retry.5000ms"`,
    );
    expect(await broker.depth(queue)).toBe(0);
  });

  it('takes queue and exchange names from a rename map given by forRootAsync; RpcClient uses the same names', async () => {
    const queue = broker.queue(unique('prod.eu.orders'), []);
    const exchange = broker.exchange(unique('prod.eu.events'));
    const got: string[] = [];
    @Injectable()
    class Orders {
      @MessageHandler({ queue: 'orders', retry: false })
      place(payload: { via: string }, context: MessageContext) {
        got.push(`${context.queue} ${payload.via}`);
      }

      @MessageHandler({ queue: `${queue}.events`, exchange: 'events', routingKey: 'order.#', retry: false })
      event(payload: { via: string }, context: MessageContext) {
        got.push(`${context.exchange} ${payload.via}`);
      }
    }
    broker.queue(`${queue}.events`, []);
    const CONFIG = 'CONFIG';
    @Module({
      providers: [{ provide: CONFIG, useValue: { queues: { orders: queue }, exchanges: { events: exchange } } }],
      exports: [CONFIG],
    })
    class ConfigModule {}
    @Module({
      imports: [
        MessagingModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: (config: { queues: Record<string, string>; exchanges: Record<string, string> }) => ({ uri: BROKER_URL, ...config }),
        }),
      ],
      providers: [Orders],
    })
    class AppModule {}
    const app = await apps.start(AppModule);
    const rpc = app.get(RpcClient);
    await rpc.send('orders', { via: 'send' });
    await rpc.publish('events', 'order.created', { via: 'publish' });
    await waitFor(() => got.length === 2, 'both messages');
    expect(got.sort()).toEqual([`${exchange} publish`, `${queue} send`].sort());
    // Its dead-letter queue is found by the name the code uses, too (it would be "orders.dlq" otherwise).
    await expect(app.get(DeadLetters).replay('orders')).resolves.toBe(0);
  });

  it('publish resolves when no queue is bound yet; mandatory: true rejects with UnroutableError; send stays mandatory', async () => {
    const exchange = broker.exchange(unique('lonely'));
    await broker.channel.assertExchange(exchange, 'topic', { durable: true });
    const app = await apps.start(appModule({}, {}));
    const rpc = app.get(RpcClient);
    await expect(rpc.publish(exchange, 'order.shipped', { n: 1 })).resolves.toEqual(expect.any(String));
    await expect(rpc.publish(exchange, 'order.shipped', { n: 1 }, { mandatory: true })).rejects.toBeInstanceOf(UnroutableError);
    await expect(rpc.send(unique('no-such-queue'), {})).rejects.toBeInstanceOf(UnroutableError);
  });
});

describe('settling messages yourself, batches and delayed sends', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  it('ack() decides even if the handler then throws; a second settlement throws SettlementError', async () => {
    const queue = broker.queue(unique('manual-ack'), []);
    const second = deferred<unknown>();
    const calls: number[] = [];
    @Injectable()
    class Manual {
      @MessageHandler({ queue, retry: false })
      async handle(_payload: unknown, context: MessageContext) {
        calls.push(context.attempt);
        await context.ack();
        try {
          void context.ack();
        } catch (error) {
          second.resolve(error);
        }
        throw new Error('too late to matter');
      }
    }
    const app = await apps.start(appModule({}, { providers: [Manual] }));
    await app.get(RpcClient).send(queue, { x: 1 });
    expect(await second.promise).toBeInstanceOf(SettlementError);
    await app.close();
    expect(calls).toEqual([1]);
    expect(await broker.depth(queue)).toBe(0);
    expect(await broker.depth(`${queue}.dlq`)).toBe(0);
  });

  it('nack({ requeue: true }) redelivers; nack({ requeue: false }) drops; deadLetter(reason) keeps it with the reason', async () => {
    const queue = broker.queue(unique('manual-nack'), []);
    const seen: string[] = [];
    @Injectable()
    class Manual {
      @MessageHandler({ queue, retry: false })
      async handle(payload: { kind: string }, context: MessageContext) {
        seen.push(`${payload.kind}${context.redelivered ? ' again' : ''}`);
        if (payload.kind === 'requeue') return context.redelivered ? context.ack() : context.nack({ requeue: true });
        if (payload.kind === 'drop') return context.nack({ requeue: false });
        return context.deadLetter('no stock for this SKU');
      }
    }
    const app = await apps.start(appModule({}, { providers: [Manual] }));
    const rpc = app.get(RpcClient);
    for (const kind of ['requeue', 'drop', 'dead']) await rpc.send(queue, { kind });
    await waitFor(async () => seen.length === 4 && (await broker.depth(`${queue}.dlq`)) === 1, 'four calls and one dead letter');
    expect(seen.sort()).toEqual(['dead', 'drop', 'requeue', 'requeue again']);
    const [dead] = await broker.drainQueue(`${queue}.dlq`);
    expect(header(dead, 'x-error-message')).toBe('no stock for this SKU');
    expect(await broker.depth(queue)).toBe(0);
  });

  it('retry({ delayMs }) tries again after the delay and not before, attempt one higher', async () => {
    const queue = broker.queue(unique('manual-retry'), []);
    const tries: Array<{ attempt: number; at: number }> = [];
    @Injectable()
    class Manual {
      @MessageHandler({ queue, retry: false })
      async handle(_payload: unknown, context: MessageContext) {
        tries.push({ attempt: context.attempt, at: Date.now() });
        if (context.attempt === 1) await context.retry({ delayMs: 400 });
      }
    }
    const app = await apps.start(appModule({}, { providers: [Manual] }));
    await app.get(RpcClient).send(queue, {});
    await waitFor(() => tries.length === 2, 'the retry', 5_000);
    expect(tries.map((t) => t.attempt)).toEqual([1, 2]);
    expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(390);
    broker.sweep('messaging.delayed.400ms.');
  });

  it('a batch handler gets 50 messages as 5 batches of 10, acked together; a failing batch retries each of its messages', async () => {
    const queue = broker.queue(unique('batch'), [50]);
    const batches: number[][] = [];
    let failNext = false;
    const retried: number[] = [];
    @Injectable()
    class Batch {
      @MessageHandler({ queue, batch: { size: 10, timeoutMs: 2_000 }, retry: { attempts: 2, delaysMs: [50] } })
      handle(payloads: Array<{ i: number }>, contexts: MessageContext[]) {
        if (contexts.some((c) => c.attempt > 1)) {
          retried.push(...payloads.map((p) => p.i));
          return;
        }
        if (failNext) {
          failNext = false;
          throw new Error('the batch fails');
        }
        batches.push(payloads.map((p) => p.i));
      }
    }
    // On RabbitMQ the acks are counted on the wire (basic.ack frames the app sends: class 60,
    // method 80): "together" means one ack frame per batch (multiple), not one per message.
    const proxy = ON_MEMORY ? undefined : await TcpProxy.start();
    try {
      const ackFrames = proxy?.countSent(Buffer.from([0x00, 0x3c, 0x00, 0x50]));
      const first = await apps.start(appModule(proxy ? { uri: proxy.url() } : {}, { providers: [Batch] }));
      await Promise.all(Array.from({ length: 50 }, (_, i) => first.get(RpcClient).send(queue, { i })));
      await waitFor(() => batches.length === 5, '5 batches');
      expect(batches.map((b) => b.length)).toEqual([10, 10, 10, 10, 10]);
      expect(batches.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
      // Acked, not only handled: once the app is closed, an unacked message would be back in the queue.
      await first.close();
      expect(await broker.depth(queue)).toBe(0);
      // At most one per batch (two batches that end in one tick share one); one per message would be 50.
      if (ackFrames) expect(ackFrames.count).toBeGreaterThanOrEqual(1);
      if (ackFrames) expect(ackFrames.count).toBeLessThanOrEqual(5);
    } finally {
      await proxy?.close();
    }
    const rpc = (await apps.start(appModule({}, { providers: [Batch] }))).get(RpcClient);
    failNext = true;
    await Promise.all(Array.from({ length: 10 }, (_, i) => rpc.send(queue, { i: 100 + i })));
    await waitFor(() => retried.length === 10, 'the failed batch retried', 10_000);
    expect(retried.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => 100 + i));
    expect(await broker.depth(queue)).toBe(0);
  });

  it('a partial batch goes to its handler after timeoutMs', async () => {
    const queue = broker.queue(unique('batch-partial'), []);
    const batches: number[] = [];
    @Injectable()
    class Batch {
      @MessageHandler({ queue, batch: { size: 100, timeoutMs: 200 }, retry: false })
      handle(payloads: unknown[]) {
        batches.push(payloads.length);
      }
    }
    const app = await apps.start(appModule({}, { providers: [Batch] }));
    const rpc = app.get(RpcClient);
    await Promise.all(Array.from({ length: 3 }, (_, i) => rpc.send(queue, { i })));
    await waitFor(() => batches.length === 1, 'the partial batch');
    expect(batches).toEqual([3]);
  });

  it('a delayed send arrives after its delay and not before; one to a missing queue is refused at once', async () => {
    const queue = broker.queue(unique('delayed'), []);
    const arrived: number[] = [];
    @Injectable()
    class Later {
      @MessageHandler({ queue, retry: false })
      handle() {
        arrived.push(Date.now());
      }
    }
    const app = await apps.start(appModule({}, { providers: [Later] }));
    const rpc = app.get(RpcClient);
    const sent = Date.now();
    await rpc.send(queue, { later: true }, { delayMs: 500 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(arrived).toEqual([]);
    await waitFor(() => arrived.length === 1, 'the delayed message', 5_000);
    expect(arrived[0] - sent).toBeGreaterThanOrEqual(490);
    await expect(rpc.send(unique('no-such-queue'), {}, { delayMs: 500 })).rejects.toBeInstanceOf(UnroutableError);
    broker.sweep('messaging.delayed.500ms.');
  });
});
