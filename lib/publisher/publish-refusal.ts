import { ExchangeNotFoundError, PublishRefusedError } from '../messaging.errors';
import { type ChannelClosedError, REPLY_CODE } from '../transport/transport.errors';
import type { Outgoing } from '../transport/outgoing';

/**
 * Whether the broker closed a channel over a publish to this message's exchange, which it would
 * refuse again (the exchange does not exist, or the user may not write to it): then the message
 * fails with that reason instead of being written again on the next channel.
 */
export function refusalOf(closeError: ChannelClosedError | undefined, message: Outgoing): Error | undefined {
  const { exchange } = message;
  if (closeError?.publishExchange !== exchange) return undefined;
  if (closeError.code === REPLY_CODE.NOT_FOUND) return new ExchangeNotFoundError(exchange, closeError.reason);
  if (closeError.code === REPLY_CODE.ACCESS_REFUSED) return new PublishRefusedError(exchange, closeError.reason);
  return undefined;
}
