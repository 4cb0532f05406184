import { Injectable, UseGuards } from '@nestjs/common';
import { MessageCtx, MessageHandler, Payload, UnrecoverableError, type MessageContext } from '../../lib';
import { PlaceOrder } from '../messages';
import { Q } from '../queues';
import { unitPrice } from './catalog';
import { FulfilmentService } from './fulfilment.service';
import { TenantGuard } from './tenant.guard';

/**
 * The `orders.place` command. Workers share the queue: each order goes to one of them.
 * A failure is tried again (3 tries, after 0.5 s then 2 s). An order that can never succeed goes
 * straight to `orders.place.dlq`: one that breaks the PlaceOrder rules (the global
 * ValidationPipe: BadRequestException), one of a tenant this deployment does not serve
 * (TenantGuard: ForbiddenException), one for an unknown SKU (UnrecoverableError).
 */
@Injectable()
export class OrdersHandlers {
  constructor(private readonly fulfilment: FulfilmentService) {}

  @MessageHandler({ queue: Q.placeOrder, retry: { attempts: 3, delaysMs: [500, 2000] } })
  @UseGuards(TenantGuard)
  async place(@Payload() order: PlaceOrder, @MessageCtx() context: MessageContext): Promise<void> {
    if (unitPrice(order.sku) === undefined) throw new UnrecoverableError(`Order ${order.orderId}: unknown SKU "${order.sku}"`);
    // FLAKY's warehouse times out on the first try of every order; the retry gets through.
    if (order.sku === 'FLAKY' && context.attempt === 1) throw new Error('Warehouse timed out');
    await this.fulfilment.fulfil(order, context.attempt, context.signal);
  }
}
