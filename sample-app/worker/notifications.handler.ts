import { Injectable } from '@nestjs/common';
import { MessageHandler, type MessageContext } from '../../lib';
import { OrderShipped } from '../messages';
import { ORDER_SHIPPED, Q } from '../queues';
import { ActivityLog } from './activity-log';

/** Subscriber group "notifications" of order.shipped: gets its own copy of every event. */
@Injectable()
export class NotificationsHandler {
  constructor(private readonly activity: ActivityLog) {}

  @MessageHandler({ queue: Q.notificationsShipped, exchange: Q.ordersExchange, routingKey: ORDER_SHIPPED })
  onShipped(event: OrderShipped, context: MessageContext): void {
    this.activity.record('customer.notified', event.orderId, context.messageId);
  }
}
