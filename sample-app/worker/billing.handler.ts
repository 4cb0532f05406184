import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { MessageHandler, TrackContext, type MessageContext } from '../../lib';
import { INSTANCE } from '../instance';
// Classes, not types: the ValidationPipe checks each payload against its parameter's declared class.
import { IssueReceipt, OrderCreated, OrderShipped, type Receipt } from '../messages';
import { ORDER_CREATED, ORDER_SHIPPED, Q } from '../queues';
import { ActivityLog } from './activity-log';
import { Invoices } from './invoices';
import { UnknownSkuError, unitPrice } from './catalog';

@Injectable()
export class BillingHandlers {
  constructor(
    private readonly activity: ActivityLog,
    private readonly invoices: Invoices,
    private readonly track: TrackContext,
  ) {}

  /**
   * Async request/response: the API sends with `replyTo: orders.receipts` and does not wait;
   * what this returns goes to that queue, correlated by the request's message id.
   */
  @MessageHandler({ queue: Q.issueReceipt, retry: false })
  issueReceipt(request: IssueReceipt): Receipt {
    const price = unitPrice(request.sku);
    if (price === undefined) throw new UnknownSkuError(request.sku);
    return {
      receiptId: `rcpt-${randomUUID()}`,
      orderId: request.orderId,
      total: Math.round(price * request.quantity * 100) / 100,
      issuedAt: new Date().toISOString(),
      issuedBy: INSTANCE,
      requestId: this.track.requestId,
    };
  }

  /**
   * Subscriber group "billing" of order.created: opens the order's invoice. Idempotent: an event
   * delivered again (the outbox relay sends at least once) opens nothing twice.
   */
  @MessageHandler({ queue: Q.billingOrderCreated, exchange: Q.ordersExchange, routingKey: ORDER_CREATED, idempotent: true })
  onOrderCreated(event: OrderCreated, context: MessageContext): void {
    this.invoices.open(event, context.messageId);
  }

  /** Subscriber group "billing" of order.shipped: charges the customer, once per event. */
  @MessageHandler({ queue: Q.billingShipped, exchange: Q.ordersExchange, routingKey: ORDER_SHIPPED, idempotent: true })
  onShipped(event: OrderShipped, context: MessageContext): void {
    this.activity.record('billing.charged', event.orderId, context.messageId);
  }
}
