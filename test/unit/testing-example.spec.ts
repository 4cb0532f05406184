/**
 * The example of docs/testing.md ("Testing your handlers"), verbatim but for its imports (lib/ here,
 * and Vitest's globals): it runs on the in-memory broker, so it needs no service (and stays in the
 * unit project). If it fails, the docs are wrong.
 */
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import { MessageHandler, MessagingHarness, MessagingModule, RpcClient, UnrecoverableError } from '../../lib';

@Injectable()
class OrderService {
  constructor(private readonly rpc: RpcClient) {}
  place(sku: string) {
    return this.rpc.send('orders.place', { sku });
  }
}

@Injectable()
class OrderHandlers {
  constructor(private readonly rpc: RpcClient) {}

  @MessageHandler({ queue: 'orders.place', retry: { attempts: 3, delaysMs: [1_000, 5_000] } })
  async place(order: { sku: string }) {
    if (order.sku === 'UNKNOWN') throw new UnrecoverableError(`No such SKU: ${order.sku}`);
    await this.rpc.publish('orders', 'order.placed', { sku: order.sku });
  }

  @MessageHandler({ queue: 'shipping.order-placed', exchange: 'orders', routingKey: 'order.placed' })
  ship() {} // a subscriber: it declares the "orders" exchange
}

describe('orders', () => {
  let app: INestApplicationContext;
  let run = 0;

  beforeEach(async () => {
    const module = await Test.createTestingModule({
      // A broker of its own per test: nothing left over from the one before.
      imports: [MessagingModule.forRoot({ uri: `memory://orders-${++run}` })],
      providers: [OrderService, OrderHandlers],
    }).compile();
    app = await module.init();
  });
  afterEach(() => app.close());

  it('publishes order.placed for a known SKU', async () => {
    await app.get(OrderService).place('WIDGET');
    const harness = app.get(MessagingHarness);
    await harness.idle();
    expect(harness.published({ exchange: 'orders' }).map((m) => m.payload)).toEqual([{ sku: 'WIDGET' }]);
  });

  it('dead-letters an unknown SKU at once, with the reason', async () => {
    await app.get(OrderService).place('UNKNOWN');
    const harness = app.get(MessagingHarness);
    await harness.idle();
    expect(harness.deadLettered('orders.place').map((m) => m.headers)).toEqual([
      expect.objectContaining({ 'x-error-name': 'UnrecoverableError', 'x-error-message': 'No such SKU: UNKNOWN', 'x-attempts': 1 }),
    ]);
  });
});
