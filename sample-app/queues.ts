/**
 * Every queue and exchange name of the app. @MessageHandler options are fixed when this file
 * loads, so the optional QUEUE_PREFIX (e.g. to run several copies of the app, or tests, on one
 * broker) is read from the environment then, not from AppConfig.
 */
export function queueNames(prefix = '') {
  return {
    /** Command: place an order (workers compete for it). */
    placeOrder: `${prefix}orders.place`,
    /** Request/response: price an order. */
    quote: `${prefix}pricing.quote`,
    /** Async request: issue a receipt; the answer goes to `receipts`. */
    issueReceipt: `${prefix}billing.issue-receipt`,
    /** Where receipts come back to the API. */
    receipts: `${prefix}orders.receipts`,
    /** Events about orders (topic exchange) and its two subscriber groups. */
    ordersExchange: `${prefix}orders`,
    billingShipped: `${prefix}billing.order-shipped`,
    notificationsShipped: `${prefix}notifications.order-shipped`,
    /** Scatter-gather: every worker answers with its inventory. */
    inventoryExchange: `${prefix}inventory`,
  };
}

export const ORDER_SHIPPED = 'order.shipped';
export const INVENTORY_REPORT = 'inventory.report';

export const Q = queueNames(process.env.QUEUE_PREFIX ?? '');
