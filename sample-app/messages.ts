import { IsInt, IsISO8601, IsString, Length, Min } from 'class-validator';

/**
 * The bodies of the messages the API and the workers exchange. Those a worker takes are classes
 * with class-validator rules: the app's global ValidationPipe checks every message against the
 * handler's declared class, and a message that breaks a rule goes to the dead-letter queue at
 * once (a request gets the reason as RpcRemoteError 'BadRequestException').
 */

export class PlaceOrder {
  @IsString()
  @Length(1, 80)
  orderId!: string;

  @IsString()
  @Length(1, 64)
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;
}

export class QuoteRequest {
  @IsString()
  @Length(1, 64)
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;
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

export class IssueReceipt {
  @IsString()
  @Length(1, 80)
  orderId!: string;

  @IsString()
  @Length(1, 64)
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;
}

export interface Receipt {
  receiptId: string;
  orderId: string;
  total: number;
  issuedAt: string;
  issuedBy: string;
  requestId?: string;
}

/** A worker placed an order (published through the outbox when the orders are in PostgreSQL). */
export class OrderCreated {
  @IsString()
  orderId!: string;

  @IsString()
  sku!: string;

  @IsInt()
  @Min(1)
  quantity!: number;

  @IsISO8601()
  createdAt!: string;
}

export class OrderShipped {
  @IsString()
  orderId!: string;

  @IsISO8601()
  shippedAt!: string;
}

export interface InventoryReport {
  worker: string;
  handledOrders: number;
  reserved: Record<string, number>;
}
