import { Inject, Injectable, Scope } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { MESSAGE_CONTEXT, type MessageContext } from '../../lib';

/**
 * The state of one quote. Request-scoped: Nest makes a fresh one for every message the pricing
 * handler takes (and so a fresh PricingHandler), with that message's context injected.
 */
@Injectable({ scope: Scope.REQUEST })
export class QuoteSession {
  readonly quoteId = randomUUID();
  readonly pricedAt = new Date();

  constructor(@Inject(MESSAGE_CONTEXT) private readonly message: MessageContext) {}

  /** Quotes hold for 15 minutes. */
  get validUntil(): string {
    return new Date(this.pricedAt.getTime() + 15 * 60_000).toISOString();
  }

  /** The id of the request message, for the audit trail. */
  get requestMessageId(): string | undefined {
    return this.message.messageId;
  }
}
