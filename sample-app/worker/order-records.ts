import { Injectable } from '@nestjs/common';
import { RpcClient } from '../../lib';
import { Outbox } from '../../lib/outbox';
import { OrdersDatabase } from '../database.module';
import type { OrderCreated } from '../messages';
import { ORDER_CREATED, Q } from '../queues';
import type { HandledOrder } from './fulfilment.service';

/**
 * Where a placed order is written, and how `order.created` is announced. With PostgreSQL
 * (DATABASE_URL), the order row and the event go in one transaction through the Outbox: the
 * event leaves only if the order was saved, and is not lost if the worker dies right after the
 * COMMIT. An order already saved (its command delivered again) is not announced twice. Without a
 * database the event is published directly.
 */
@Injectable()
export class OrderRecords {
  constructor(
    private readonly database: OrdersDatabase,
    private readonly outbox: Outbox,
    private readonly rpc: RpcClient,
  ) {}

  async save(order: HandledOrder, tenant: string | undefined): Promise<void> {
    const event: OrderCreated = { orderId: order.orderId, sku: order.sku, quantity: order.quantity, createdAt: order.handledAt };
    const { pool } = this.database;
    if (!pool) {
      await this.rpc.publish(Q.ordersExchange, ORDER_CREATED, event);
      return;
    }
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      const { rowCount } = await client.query(
        `INSERT INTO orders (order_id, sku, quantity, tenant, request_id, worker, handled_at) VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (order_id) DO NOTHING`,
        [order.orderId, order.sku, order.quantity, tenant ?? null, order.requestId ?? null, order.worker, order.handledAt],
      );
      if (rowCount === 1) await this.outbox.publish(client, Q.ordersExchange, ORDER_CREATED, event);
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }
}
