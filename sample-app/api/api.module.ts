import { Module } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { MessagingHttpExceptionFilter } from '../../lib';
import { InventoryController } from './inventory.controller';
import { OrderBook } from './order-book';
import { OrdersController } from './orders.controller';
import { ReceiptsHandler } from './receipts.handler';

/**
 * The HTTP API, and the one handler it needs: the answers to its async receipt requests. The
 * library's MessagingHttpExceptionFilter turns what the workers answer into HTTP statuses (a
 * pricing refusal 422, no answer in time 504, no worker yet 503).
 */
@Module({
  controllers: [OrdersController, InventoryController],
  providers: [OrderBook, ReceiptsHandler, { provide: APP_FILTER, useClass: MessagingHttpExceptionFilter }],
  exports: [OrderBook],
})
export class ApiModule {}
