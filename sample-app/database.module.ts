import { Global, Injectable, Module, type OnApplicationShutdown } from '@nestjs/common';
import type { Pool } from 'pg';
import { APP_CONFIG, type AppConfig } from './config';

/**
 * The workers' database: a `pg` Pool when DATABASE_URL is set, nothing otherwise (orders then
 * live in memory). `pg` is loaded only when it is used. Closed at application shutdown, after the
 * messaging module has drained its handlers and its outbox relay.
 */
@Injectable()
export class OrdersDatabase implements OnApplicationShutdown {
  constructor(readonly pool: Pool | undefined) {}

  static async open(config: AppConfig): Promise<OrdersDatabase> {
    if (!config.databaseUrl) return new OrdersDatabase(undefined);
    const { Pool } = await import('pg');
    const pool = new Pool({ connectionString: config.databaseUrl, max: 10 });
    // An idle connection the server dropped is replaced by the pool; nothing to crash for.
    pool.on('error', () => undefined);
    // One statement, so the lock is held by the CREATE's own transaction: workers that start
    // together do not race on the catalog.
    await pool.query(`SELECT pg_advisory_xact_lock(hashtext('orders')); ${ORDERS_TABLE}`);
    return new OrdersDatabase(pool);
  }

  async onApplicationShutdown(): Promise<void> {
    await this.pool?.end();
  }
}

const ORDERS_TABLE = `CREATE TABLE IF NOT EXISTS orders (
  order_id text PRIMARY KEY,
  sku text NOT NULL,
  quantity integer NOT NULL,
  tenant text,
  request_id text,
  worker text NOT NULL,
  handled_at timestamptz NOT NULL
)`;

@Global()
@Module({
  providers: [{ provide: OrdersDatabase, useFactory: (config: AppConfig) => OrdersDatabase.open(config), inject: [APP_CONFIG] }],
  exports: [OrdersDatabase],
})
export class DatabaseModule {}
