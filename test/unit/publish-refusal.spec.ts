import { ExchangeNotFoundError, PublishRefusedError } from '../../lib/messaging.errors';
import { refusalOf } from '../../lib/publisher/publish-refusal';
import type { Outgoing } from '../../lib/transport/outgoing';
import { ChannelClosedError, REPLY_CODE } from '../../lib/transport/transport.errors';

function message(exchange: string, routingKey = 'rk'): Outgoing {
  return { exchange, routingKey, properties: { messageId: 'm1' } };
}

describe('refusalOf', () => {
  it('fails a publish to an exchange the broker said does not exist (404) with ExchangeNotFoundError', () => {
    const error = refusalOf(new ChannelClosedError("NOT_FOUND - no exchange 'orders'", REPLY_CODE.NOT_FOUND, 'orders'), message('orders'));
    expect(error).toBeInstanceOf(ExchangeNotFoundError);
    expect((error as ExchangeNotFoundError).exchange).toBe('orders');
    expect(error?.message).toBe(`Exchange "orders" does not exist (NOT_FOUND - no exchange 'orders')`);
  });

  it('fails a publish the broker refused for lack of permission (403) with PublishRefusedError', () => {
    const error = refusalOf(
      new ChannelClosedError('ACCESS_REFUSED - write access', REPLY_CODE.ACCESS_REFUSED, 'orders'),
      message('orders'),
    );
    expect(error).toBeInstanceOf(PublishRefusedError);
    expect((error as PublishRefusedError).exchange).toBe('orders');
    expect(error?.message).toBe('RabbitMQ refused the publish to exchange "orders" (ACCESS_REFUSED - write access)');
  });

  it('names the default exchange amq.default when a send to a queue was refused', () => {
    const error = refusalOf(new ChannelClosedError('ACCESS_REFUSED', REPLY_CODE.ACCESS_REFUSED, ''), message('', 'some-queue'));
    expect(error?.message).toBe('RabbitMQ refused the publish to exchange "amq.default" (ACCESS_REFUSED)');
  });

  // Anything else is written again on the next channel: the refusal was not about this message.
  it.each<[string, ChannelClosedError | undefined, string]>([
    ['no close error (the connection dropped)', undefined, 'orders'],
    ['a refusal of a publish to another exchange', new ChannelClosedError('NOT_FOUND', REPLY_CODE.NOT_FOUND, 'other'), 'orders'],
    ['a 404 that was not about a publish (e.g. a queue check)', new ChannelClosedError('NOT_FOUND', REPLY_CODE.NOT_FOUND), 'orders'],
    // A close not caused by a publish must not fail every send to the default exchange.
    ['a 404 that was not about a publish, for a send to a queue', new ChannelClosedError('NOT_FOUND', REPLY_CODE.NOT_FOUND), ''],
    [
      'another code for the same exchange (406)',
      new ChannelClosedError('PRECONDITION_FAILED', REPLY_CODE.PRECONDITION_FAILED, 'orders'),
      'orders',
    ],
    ['a close without a code', new ChannelClosedError('channel closed', undefined, 'orders'), 'orders'],
    ['a connection-level code (320)', new ChannelClosedError('CONNECTION_FORCED', 320, 'orders'), 'orders'],
  ])('is undefined for %s', (_label, closeError, exchange) => {
    expect(refusalOf(closeError, message(exchange))).toBeUndefined();
  });
});
