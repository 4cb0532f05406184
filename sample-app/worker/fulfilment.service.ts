import { Inject, Injectable, Logger } from '@nestjs/common';
import { setTimeout as sleep } from 'node:timers/promises';
import { TrackContext } from '../../lib';
import { APP_CONFIG, type AppConfig } from '../config';
import { INSTANCE } from '../instance';
import type { InventoryReport, PlaceOrder } from '../messages';
import { OrderRecords } from './order-records';

export interface HandledOrder extends PlaceOrder {
  /** The x-request-id of the HTTP request that placed it, as this worker saw it. */
  requestId?: string;
  attempt: number;
  worker: string;
  handledAt: string;
}

const REMEMBERED = 10_000;

/**
 * The worker's business logic: reserves stock for an order and saves it (OrderRecords: to
 * PostgreSQL with DATABASE_URL, announcing order.created through the outbox). A singleton that
 * reads the request id of whatever message is being handled from TrackContext, without it being
 * passed in. What this worker handled and reserved is also kept in memory, for the API's look-ups.
 */
@Injectable()
export class FulfilmentService {
  private readonly logger = new Logger(FulfilmentService.name);
  private readonly handled = new Map<string, HandledOrder>();
  private readonly reserved = new Map<string, number>();
  private handledCount = 0;

  constructor(
    private readonly track: TrackContext,
    private readonly records: OrderRecords,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async fulfil(order: PlaceOrder, attempt: number, signal: AbortSignal): Promise<HandledOrder> {
    // The warehouse call; aborted if shutdown stops waiting for us (the message then goes back).
    const { min, max } = this.config.workMs;
    const ms = min + Math.floor(Math.random() * (max - min + 1));
    if (ms > 0) await sleep(ms, undefined, { signal });

    const record: HandledOrder = {
      ...order,
      requestId: this.track.requestId,
      attempt,
      worker: INSTANCE,
      handledAt: new Date().toISOString(),
    };
    // Saved first: if that fails, the order is tried again and nothing was reserved twice.
    await this.records.save(record, this.track.get('tenant'));
    this.reserved.set(order.sku, (this.reserved.get(order.sku) ?? 0) + order.quantity);
    this.handled.set(order.orderId, record);
    if (this.handled.size > REMEMBERED) this.handled.delete(this.handled.keys().next().value as string);
    this.handledCount++;
    if (this.config.logEach) this.logger.log(`[${this.track.requestId}] handled order ${order.orderId}`);
    return record;
  }

  find(orderId: string): HandledOrder | undefined {
    return this.handled.get(orderId);
  }

  report(): InventoryReport {
    return { worker: INSTANCE, handledOrders: this.handledCount, reserved: Object.fromEntries(this.reserved) };
  }
}
