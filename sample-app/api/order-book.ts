import { Injectable, Logger } from '@nestjs/common';
import type { PlaceOrder, Receipt } from '../messages';

export interface ReceiptFailure {
  error: string;
  message: string;
}

export interface OrderEntry {
  order: PlaceOrder;
  /** Id of the orders.place command. */
  messageId: string;
  acceptedAt: string;
  /** Id of the receipt request, while its answer is awaited or once it came. */
  receiptRequest?: string;
  receipt?: Receipt;
  receiptFailure?: ReceiptFailure;
}

const KEPT = 10_000;

/**
 * The API's record of the orders it accepted and of the receipts that came back for them. In
 * memory: a stand-in for a database (with several API instances, a receipt may come back to
 * another instance than the one that asked; a shared database is what makes that work).
 */
@Injectable()
export class OrderBook {
  private readonly logger = new Logger(OrderBook.name);
  private readonly orders = new Map<string, OrderEntry>();
  private readonly awaitingReceipt = new Map<string, string>();

  accept(order: PlaceOrder, messageId: string): OrderEntry {
    const entry: OrderEntry = { order, messageId, acceptedAt: new Date().toISOString() };
    this.orders.set(order.orderId, entry);
    if (this.orders.size > KEPT) this.orders.delete(this.orders.keys().next().value as string);
    return entry;
  }

  get(orderId: string): OrderEntry | undefined {
    return this.orders.get(orderId);
  }

  /** Call before sending the request: its answer may arrive before send() resolves. */
  awaitReceipt(orderId: string, requestId: string): void {
    const entry = this.orders.get(orderId);
    if (!entry) return;
    entry.receiptRequest = requestId;
    entry.receipt = undefined;
    entry.receiptFailure = undefined;
    this.awaitingReceipt.set(requestId, orderId);
  }

  forgetReceipt(requestId: string): void {
    this.awaitingReceipt.delete(requestId);
  }

  /** Records the answer to receipt request `correlationId`; false when nobody here asked for it. */
  receiptArrived(correlationId: string | undefined, outcome: { receipt: Receipt } | { failure: ReceiptFailure }): boolean {
    const orderId = correlationId === undefined ? undefined : this.awaitingReceipt.get(correlationId);
    const entry = orderId === undefined ? undefined : this.orders.get(orderId);
    if (!entry) {
      this.logger.warn(`A receipt for request ${correlationId ?? '-'} arrived, which this instance did not ask for; dropped`);
      return false;
    }
    this.awaitingReceipt.delete(correlationId!);
    if ('receipt' in outcome) entry.receipt = outcome.receipt;
    else entry.receiptFailure = outcome.failure;
    return true;
  }
}
