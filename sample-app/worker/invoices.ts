import { Injectable } from '@nestjs/common';
import type { OrderCreated } from '../messages';
import { unitPrice } from './catalog';

export interface Invoice {
  orderId: string;
  total: number;
  /** Id of the order.created event that opened it. */
  eventId?: string;
  openedAt: string;
}

const KEPT = 10_000;

/** Billing's invoices, one per order (in memory: a stand-in for billing's own database). */
@Injectable()
export class Invoices {
  private readonly byOrder = new Map<string, Invoice>();
  /** Invoices opened, duplicates included: with an idempotent handler it equals the orders seen. */
  opened = 0;

  open(event: OrderCreated, eventId: string | undefined): Invoice {
    const total = Math.round((unitPrice(event.sku) ?? 0) * event.quantity * 100) / 100;
    const invoice = { orderId: event.orderId, total, eventId, openedAt: new Date().toISOString() };
    this.opened++;
    this.byOrder.set(event.orderId, invoice);
    if (this.byOrder.size > KEPT) this.byOrder.delete(this.byOrder.keys().next().value as string);
    return invoice;
  }

  find(orderId: string): Invoice | undefined {
    return this.byOrder.get(orderId);
  }
}
