import { BadRequestException, Controller, Get, Inject, Query } from '@nestjs/common';
import { RpcClient } from '../../lib';
import { APP_CONFIG, type AppConfig } from '../config';
import type { InventoryReport } from '../messages';
import { INVENTORY_REPORT, Q } from '../queues';

@Controller('inventory')
export class InventoryController {
  constructor(
    private readonly rpc: RpcClient,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Scatter-gather: asks every running worker at once and waits gatherTimeoutMs for answers
   * (or until `?expect=N` answered). Fewer answers than workers is not an error.
   */
  @Get()
  async report(@Query('expect') expect?: string) {
    const wanted = expect === undefined ? undefined : Number(expect);
    if (wanted !== undefined && (!Number.isInteger(wanted) || wanted < 1)) {
      throw new BadRequestException('expect must be a positive integer');
    }
    const reports = await this.rpc.gather<InventoryReport>(
      Q.inventoryExchange,
      INVENTORY_REPORT,
      {},
      {
        timeoutMs: this.config.gatherTimeoutMs,
        expect: wanted,
      },
    );
    const reserved: Record<string, number> = {};
    for (const report of reports) {
      for (const [sku, quantity] of Object.entries(report.reserved)) reserved[sku] = (reserved[sku] ?? 0) + quantity;
    }
    return { workers: reports.length, reserved, reports };
  }
}
