import { Injectable } from '@nestjs/common';
import { MessageHandler, type MessageContext } from '../../lib';
import type { Receipt } from '../messages';
import { Q } from '../queues';
import { OrderBook, type ReceiptFailure } from './order-book';

/**
 * The other half of the async request/response: answers to `billing.issue-receipt` arrive here,
 * with correlationId = the id send() returned for the request.
 */
@Injectable()
export class ReceiptsHandler {
  constructor(private readonly book: OrderBook) {}

  @MessageHandler({ queue: Q.receipts })
  onReceipt(answer: Receipt | ReceiptFailure, context: MessageContext): void {
    // A handler that threw answers with its error's name and message, marked by this header.
    if (context.headers['x-reply-error']) {
      const failure = answer as { name?: string; message?: string };
      this.book.receiptArrived(context.correlationId, {
        failure: { error: String(failure.name ?? 'Error'), message: String(failure.message ?? '') },
      });
    } else {
      this.book.receiptArrived(context.correlationId, { receipt: answer as Receipt });
    }
  }
}
