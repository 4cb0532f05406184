import { Injectable } from '@nestjs/common';
import { MessageHandler } from '../../lib';
import type { InventoryReport } from '../messages';
import { INVENTORY_REPORT, Q } from '../queues';
import { FulfilmentService } from './fulfilment.service';

/** Scatter-gather responder: broadcast, so every running worker answers the API's gather(). */
@Injectable()
export class InventoryResponder {
  constructor(private readonly fulfilment: FulfilmentService) {}

  @MessageHandler({ exchange: Q.inventoryExchange, routingKey: INVENTORY_REPORT, broadcast: true, retry: false })
  report(): InventoryReport {
    return this.fulfilment.report();
  }
}
