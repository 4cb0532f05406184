import type { AsyncApiPublish } from '../lib';
import { IssueReceipt, OrderCreated, OrderShipped, PlaceOrder, QuoteRequest } from './messages';
import { INVENTORY_REPORT, ORDER_CREATED, ORDER_SHIPPED, Q } from './queues';

/**
 * What the app sends, for its AsyncAPI document (`npm run asyncapi`): the handlers tell what it
 * takes and answers; what it sends is told here, since no metadata knows it.
 */
export const API_SENDS: AsyncApiPublish[] = [
  { queue: Q.placeOrder, payload: PlaceOrder, summary: 'POST /orders: a worker places the order' },
  { queue: Q.quote, payload: QuoteRequest, summary: 'GET /orders/:id/quote: a request, answered by the pricing worker' },
  { queue: Q.issueReceipt, payload: IssueReceipt, summary: 'POST /orders/:id/receipt: billing answers on orders.receipts' },
  {
    exchange: Q.ordersExchange,
    routingKey: ORDER_SHIPPED,
    payload: OrderShipped,
    summary: 'POST /orders/:id/ship: to every subscriber group',
  },
  {
    exchange: Q.inventoryExchange,
    routingKey: INVENTORY_REPORT,
    name: 'InventoryQuery',
    payload: { type: 'object', description: 'Empty: every running worker answers with its inventory' },
    summary: 'GET /inventory: scatter-gather over the workers',
  },
];

export const WORKER_SENDS: AsyncApiPublish[] = [
  {
    exchange: Q.ordersExchange,
    routingKey: ORDER_CREATED,
    payload: OrderCreated,
    summary: 'A worker placed an order (published through the outbox when the orders are in PostgreSQL)',
  },
];
