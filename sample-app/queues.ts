/**
 * Every queue and exchange name of the app, as the code knows them. On the broker they may be
 * called something else: `queueRenames` turns QUEUE_PREFIX (e.g. to run several copies of the app,
 * or tests, on one broker) into MessagingModule's `queues` and `exchanges` maps, so no decorator
 * or RpcClient call changes.
 */
export const Q = {
  /** Command: place an order (workers compete for it). */
  placeOrder: 'orders.place',
  /** Request/response: price an order. */
  quote: 'pricing.quote',
  /** Async request: issue a receipt; the answer goes to `receipts`. */
  issueReceipt: 'billing.issue-receipt',
  /** Where receipts come back to the API. */
  receipts: 'orders.receipts',
  /** Events about orders (topic exchange) and their subscriber groups. */
  ordersExchange: 'orders',
  billingOrderCreated: 'billing.order-created',
  billingShipped: 'billing.order-shipped',
  notificationsShipped: 'notifications.order-shipped',
  /** Scatter-gather: every worker answers with its inventory. */
  inventoryExchange: 'inventory',
} as const;

const EXCHANGES: string[] = [Q.ordersExchange, Q.inventoryExchange];

/** MessagingModule's rename maps: every name with `prefix` in front (none without a prefix). */
export function queueRenames(prefix: string): { queues: Record<string, string>; exchanges: Record<string, string> } {
  const names: string[] = Object.values(Q);
  const renamed = (list: string[]) => Object.fromEntries(prefix ? list.map((name) => [name, `${prefix}${name}`]) : []);
  return { queues: renamed(names.filter((name) => !EXCHANGES.includes(name))), exchanges: renamed(EXCHANGES) };
}

export const ORDER_CREATED = 'order.created';
export const ORDER_SHIPPED = 'order.shipped';
export const INVENTORY_REPORT = 'inventory.report';
