import { Injectable } from '@nestjs/common';
import { MessageHandler, UnrecoverableError, type MessageContext } from '../../lib';
import type { PlaceOrder } from '../messages';
import { Q } from '../queues';
import { unitPrice } from './catalog';
import { FulfilmentService } from './fulfilment.service';

/**
 * The `orders.place` command. Workers share the queue: each order goes to one of them.
 * A failure is tried again (3 tries, after 0.5 s then 2 s); an order that can never succeed
 * throws UnrecoverableError and goes straight to `orders.place.dlq`.
 */
@Injectable()
export class OrdersHandlers {
  constructor(private readonly fulfilment: FulfilmentService) {}

  @MessageHandler({ queue: Q.placeOrder, retry: { attempts: 3, delaysMs: [500, 2000] } })
  async place(order: PlaceOrder, context: MessageContext): Promise<void> {
    if (!isPlaceOrder(order)) throw new UnrecoverableError('Malformed order: expected { orderId, sku, quantity }');
    if (order.quantity <= 0) {
      throw new UnrecoverableError(`Order ${order.orderId}: quantity must be positive (got ${order.quantity})`);
    }
    if (unitPrice(order.sku) === undefined) throw new UnrecoverableError(`Order ${order.orderId}: unknown SKU "${order.sku}"`);
    // FLAKY's warehouse times out on the first try of every order; the retry gets through.
    if (order.sku === 'FLAKY' && context.attempt === 1) throw new Error('Warehouse timed out');
    await this.fulfilment.fulfil(order, context.attempt, context.signal);
  }
}

function isPlaceOrder(value: unknown): value is PlaceOrder {
  const order = value as Partial<PlaceOrder> | null;
  return (
    typeof order === 'object' &&
    order !== null &&
    typeof order.orderId === 'string' &&
    typeof order.sku === 'string' &&
    Number.isInteger(order.quantity)
  );
}
