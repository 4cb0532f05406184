/** The bodies of the messages the API and the workers exchange. */

export interface PlaceOrder {
  orderId: string;
  sku: string;
  quantity: number;
}

export interface QuoteRequest {
  sku: string;
  quantity: number;
}

export interface Quote {
  quoteId: string;
  sku: string;
  quantity: number;
  unitPrice: number;
  total: number;
  validUntil: string;
  /** The request id the pricing worker saw (the HTTP request's x-request-id). */
  requestId?: string;
}

export interface IssueReceipt {
  orderId: string;
  sku: string;
  quantity: number;
}

export interface Receipt {
  receiptId: string;
  orderId: string;
  total: number;
  issuedAt: string;
  issuedBy: string;
  requestId?: string;
}

export interface OrderShipped {
  orderId: string;
  shippedAt: string;
}

export interface InventoryReport {
  worker: string;
  handledOrders: number;
  reserved: Record<string, number>;
}
