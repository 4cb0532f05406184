import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, MessagingError, MessagingHarness, RpcClient, UnrecoverableError } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, ON_MEMORY, unique } from '../support/broker';

/**
 * MessagingHarness as a user's test uses it (the example of docs/testing.md, "Testing your handlers", is this
 * file's first test): a handler, a service that injects RpcClient, and assertions made after
 * `idle()` instead of sleeping. Retry delays of 1 s and 5 s are released at once on memory://.
 */
describe('MessagingHarness', () => {
  const orders = unique('harness-orders');
  const events = unique('harness-events');
  const shipped = unique('harness-shipped');
  let broker: Broker;
  let app: INestApplicationContext;
  const handled: string[] = [];
  let failuresLeft = 0;

  @Injectable()
  class OrderService {
    constructor(private readonly rpc: RpcClient) {}

    place(sku: string): Promise<string> {
      return this.rpc.send(orders, { sku });
    }
  }

  @Injectable()
  class OrderHandlers {
    constructor(private readonly rpc: RpcClient) {}

    @MessageHandler({ queue: orders, retry: { attempts: 3, delaysMs: [1_000, 5_000] } })
    async place(order: { sku: string }) {
      if (order.sku === 'UNKNOWN') throw new UnrecoverableError(`No such SKU: ${order.sku}`);
      if (order.sku === 'FLAKY' && failuresLeft-- > 0) throw new Error('stock service down');
      handled.push(order.sku);
      await this.rpc.publish(events, 'order.placed', { sku: order.sku });
    }

    @MessageHandler({ queue: shipped, exchange: events, routingKey: 'order.placed' })
    noted() {
      // a subscriber, so the event has somewhere to go
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(orders);
    broker.queue(shipped);
    broker.exchange(events);
    app = await startApp(appModule({}, { providers: [OrderService, OrderHandlers] }));
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  beforeEach(() => {
    handled.length = 0;
    failuresLeft = 0;
  });

  it('idle() waits out handlers, retries (released at once on memory://) and the events they publish', async () => {
    const harness = app.get(MessagingHarness);
    failuresLeft = 2; // FLAKY fails twice, then succeeds on its third and last try
    const service = app.get(OrderService);
    await service.place('WIDGET');
    await service.place('FLAKY');
    await harness.idle(ON_MEMORY ? 2_000 : 15_000);
    expect(handled.sort()).toEqual(['FLAKY', 'WIDGET']);
    if (!ON_MEMORY) return; // what follows inspects the in-memory broker
    const placed = harness.published({ exchange: events });
    expect(placed.map((m) => m.payload)).toEqual(expect.arrayContaining([{ sku: 'WIDGET' }, { sku: 'FLAKY' }]));
    expect(placed).toHaveLength(2);
    expect(harness.published({ queue: shipped })).toHaveLength(2);
    // The two retries went through the retry queues (a copy each, published by the module).
    const flaky = (queue: string) => harness.published({ queue }).filter((m) => (m.payload as { sku: string }).sku === 'FLAKY');
    expect(flaky(orders)).toHaveLength(1);
    expect(flaky(`${orders}.retry.1000ms`).map((m) => m.headers['x-attempts'])).toEqual([1]);
    expect(flaky(`${orders}.retry.5000ms`).map((m) => m.headers['x-attempts'])).toEqual([2]);
  });

  it('deadLettered() shows what ended in <queue>.dlq, with why', async () => {
    const harness = app.get(MessagingHarness);
    await app.get(OrderService).place('UNKNOWN');
    await harness.idle(ON_MEMORY ? 2_000 : 15_000);
    expect(handled).toEqual([]);
    if (!ON_MEMORY) {
      expect(() => harness.deadLettered(orders)).toThrow(MessagingError);
      expect(() => harness.published()).toThrow(/needs uri "memory:\/\/"/);
      expect(await broker.drainQueue(`${orders}.dlq`)).toHaveLength(1);
      return;
    }
    const [dead, ...more] = harness.deadLettered(orders).filter((m) => (m.payload as { sku: string }).sku === 'UNKNOWN');
    expect(more).toEqual([]);
    expect(dead.headers).toMatchObject({
      'x-error-name': 'UnrecoverableError',
      'x-error-message': 'No such SKU: UNKNOWN',
      'x-attempts': 1,
    });
  });

  it('idle() rejects, naming what is busy, when work does not end in time', async () => {
    const harness = app.get(MessagingHarness);
    failuresLeft = 1;
    await app.get(OrderService).place('FLAKY');
    // On RabbitMQ the 1 s retry delay cannot be released early; on memory:// a handler still runs.
    const waiting = harness.idle(ON_MEMORY ? 0 : 200);
    await expect(waiting).rejects.toThrow(/still busy after \d+ ms/);
    await harness.idle(ON_MEMORY ? 2_000 : 15_000);
    expect(handled).toEqual(['FLAKY']);
  });
});
