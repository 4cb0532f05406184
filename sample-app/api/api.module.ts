import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { InventoryController } from './inventory.controller';
import { MessagingErrorsFilter } from './messaging-errors.filter';
import { OrderBook } from './order-book';
import { OrdersController } from './orders.controller';
import { ReceiptsHandler } from './receipts.handler';

/** The HTTP API, and the one handler it needs: the answers to its async receipt requests. */
@Module({
  controllers: [OrdersController, InventoryController],
  providers: [OrderBook, ReceiptsHandler, { provide: APP_FILTER, useClass: MessagingErrorsFilter }],
  exports: [OrderBook],
})
export class ApiModule {}
