import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Inject,
  Logger,
  NotFoundException,
  Param,
  Post,
  UnprocessableEntityException,
} from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { RpcClient, TrackContext } from '../../lib';
import { APP_CONFIG, type AppConfig, TENANT } from '../config';
import type { IssueReceipt, OrderShipped, PlaceOrder, Quote } from '../messages';
import { ORDER_SHIPPED, Q } from '../queues';
import { OrderBook, type OrderEntry } from './order-book';

@Controller('orders')
export class OrdersController {
  private readonly logger = new Logger(OrdersController.name);

  constructor(
    private readonly rpc: RpcClient,
    private readonly book: OrderBook,
    private readonly track: TrackContext,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * Command: a worker places the order later; the answer is the command's message id. The
   * caller's `x-tenant` travels with it as the x-track-tenant item (the workers' TenantGuard reads it).
   */
  @Post()
  @HttpCode(202)
  async place(@Body() body: unknown, @Headers('x-tenant') tenant?: string) {
    const order: PlaceOrder = { orderId: `ord-${randomUUID()}`, ...parseOrder(body) };
    if (tenant !== undefined) {
      if (!TENANT.test(tenant)) throw new BadRequestException('x-tenant must be 1 to 40 letters, digits or dashes');
      this.track.set('tenant', tenant);
    }
    const messageId = await this.rpc.send(Q.placeOrder, order);
    this.book.accept(order, messageId);
    if (this.config.logEach) this.logger.log(`[${this.track.requestId}] accepted order ${order.orderId}`);
    return { orderId: order.orderId, messageId, requestId: this.track.requestId };
  }

  @Get(':id')
  get(@Param('id') id: string): OrderEntry {
    return this.entry(id);
  }

  /** Request/response: waits for the pricing worker's answer, at most quoteTimeoutMs. */
  @Get(':id/quote')
  quote(@Param('id') id: string): Promise<Quote> {
    const { sku, quantity } = this.entry(id).order;
    return this.rpc.request<Quote>(Q.quote, { sku, quantity }, { timeoutMs: this.config.quoteTimeoutMs });
  }

  /** Event: every subscriber group (billing, notifications) gets its own copy. */
  @Post(':id/ship')
  @HttpCode(202)
  async ship(@Param('id') id: string) {
    const { orderId } = this.entry(id).order;
    const event: OrderShipped = { orderId, shippedAt: new Date().toISOString() };
    const messageId = await this.rpc.publish(Q.ordersExchange, ORDER_SHIPPED, event);
    return { orderId, messageId };
  }

  /** Async request/response: asks billing for a receipt; it comes back on orders.receipts. */
  @Post(':id/receipt')
  @HttpCode(202)
  async requestReceipt(@Param('id') id: string) {
    const { orderId, sku, quantity } = this.entry(id).order;
    const request: IssueReceipt = { orderId, sku, quantity };
    // Known before sending, so an answer faster than the broker's confirm still finds its order.
    const messageId = randomUUID();
    this.book.awaitReceipt(orderId, messageId);
    try {
      await this.rpc.send(Q.issueReceipt, request, { messageId, replyTo: Q.receipts });
    } catch (error) {
      this.book.forgetReceipt(messageId);
      throw error;
    }
    return { orderId, messageId, receipt: `/orders/${orderId}/receipt` };
  }

  @Get(':id/receipt')
  receipt(@Param('id') id: string) {
    const entry = this.entry(id);
    if (entry.receipt) return entry.receipt;
    if (entry.receiptFailure) throw new UnprocessableEntityException(entry.receiptFailure);
    throw new NotFoundException({ status: entry.receiptRequest ? 'pending' : 'not requested' });
  }

  private entry(id: string): OrderEntry {
    const entry = this.book.get(id);
    if (!entry) throw new NotFoundException(`No order ${id}`);
    return entry;
  }
}

function parseOrder(body: unknown): { sku: string; quantity: number } {
  const { sku, quantity } = (body ?? {}) as { sku?: unknown; quantity?: unknown };
  if (typeof sku !== 'string' || sku.length === 0 || sku.length > 64 || !Number.isInteger(quantity)) {
    throw new BadRequestException('Expected a JSON body { "sku": string, "quantity": integer }');
  }
  // Business rules (e.g. quantity > 0) are the worker's to enforce.
  return { sku, quantity: quantity as number };
}
