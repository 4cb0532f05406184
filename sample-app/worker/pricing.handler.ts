import { Injectable, Logger } from '@nestjs/common';
import { MessageHandler, Payload, TrackContext } from '../../lib';
import { type Quote, QuoteRequest } from '../messages';
import { Q } from '../queues';
import { UnknownSkuError, unitPrice } from './catalog';
import { QuoteSession } from './quote-session';

/**
 * Request/response: `pricing.quote` answers the caller's request() directly. It depends on the
 * request-scoped QuoteSession, so Nest builds one PricingHandler per message. No retries: the
 * caller waits, and gets an error (RpcRemoteError) rather than a late answer; a request that
 * breaks the QuoteRequest rules gets RpcRemoteError 'BadRequestException' with the reasons.
 */
@Injectable()
export class PricingHandler {
  private readonly logger = new Logger(PricingHandler.name);

  constructor(
    private readonly session: QuoteSession,
    private readonly track: TrackContext,
  ) {}

  @MessageHandler({ queue: Q.quote, retry: false })
  quote(@Payload() request: QuoteRequest): Quote {
    const price = unitPrice(request.sku);
    if (price === undefined) throw new UnknownSkuError(request.sku);
    const total = Math.round(price * request.quantity * 100) / 100;
    this.logger.debug(`[${this.track.requestId}] quote ${this.session.quoteId} for message ${this.session.requestMessageId}`);
    return {
      quoteId: this.session.quoteId,
      sku: request.sku,
      quantity: request.quantity,
      unitPrice: price,
      total,
      validUntil: this.session.validUntil,
      requestId: this.track.requestId,
    };
  }
}
