import { Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { ActivityLog } from './activity-log';
import { BillingHandlers } from './billing.handler';
import { FulfilmentService } from './fulfilment.service';
import { Invoices } from './invoices';
import { OrderRecords } from './order-records';
import { InventoryResponder } from './inventory.handler';
import { NotificationsHandler } from './notifications.handler';
import { OrdersHandlers } from './orders.handler';
import { PricingHandler } from './pricing.handler';
import { QuoteSession } from './quote-session';
import { TenantGuard } from './tenant.guard';
import { TimingInterceptor } from './timing.interceptor';

/** Everything a worker runs: the message handlers and the services they use. */
@Module({
  providers: [
    FulfilmentService,
    OrderRecords,
    Invoices,
    ActivityLog,
    QuoteSession,
    OrdersHandlers,
    PricingHandler,
    BillingHandlers,
    NotificationsHandler,
    InventoryResponder,
    TenantGuard,
    { provide: APP_INTERCEPTOR, useClass: TimingInterceptor },
  ],
  exports: [FulfilmentService, ActivityLog, Invoices],
})
export class WorkerModule {}
