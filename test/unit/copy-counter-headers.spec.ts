import type { Message, MessageFields, MessageProperties, TransportChannel } from '../../lib/transport/transport.interface';
import { AckBatcher } from '../../lib/consumer/ack-batcher';
import { Delivery, originOf, ReturnedDeliveries } from '../../lib/consumer/delivery';
import { readCounter } from '../../lib/consumer/retry-counters';

/** RELIABILITY.md 33, 34 and 39: the pure parts (origin of a copy, counters from headers, our own returns). */
function message(fields: Partial<MessageFields>, properties: Partial<MessageProperties> = {}): Message {
  return {
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q', consumerTag: 'c', ...fields },
    properties: { headers: {}, ...properties },
    content: Buffer.alloc(0),
  } as Message;
}

describe('readCounter (34)', () => {
  it.each([
    ['absent', undefined, 0],
    ['zero', 0, 0],
    ['in range', 2, 2],
    ['the most this module writes', 4, 4],
    ['above it', 5, 0],
    ['negative', -1, 0],
    ['-1e308', -1e308, 0],
    ['1e308', 1e308, 0],
    ['-Infinity', -Infinity, 0],
    ['NaN', NaN, 0],
    ['a fraction', 1.5, 0],
    ['a numeric string', '2', 0],
    ['an array', [2], 0],
    ['an object', { valueOf: (): number => 2 }, 0],
  ])('%s reads as a count from 0 to max, or 0', (_label, value, expected) => {
    const headers = value === undefined ? {} : { 'x-attempts': value };
    expect(readCounter(headers, 'x-attempts', 4)).toBe(expected);
  });

  it('ignores a counter inherited from a prototype', () => {
    const headers = Object.create({ 'x-attempts': 2 }) as Record<string, unknown>;
    expect(readCounter(headers, 'x-attempts', 4)).toBe(0);
  });
});

describe('originOf (33)', () => {
  it("is the delivery's own exchange and key for a message published to an exchange, whatever its headers say", () => {
    const msg = message(
      { exchange: 'orders', routingKey: 'order.created' },
      { headers: { 'x-original-exchange': 'forged', 'x-original-routing-key': 'x' } },
    );
    expect(originOf(msg)).toEqual({ exchange: 'orders', routingKey: 'order.created' });
  });

  it('is what a copy carries when it came through the default exchange', () => {
    const msg = message(
      { exchange: '', routingKey: 'q' },
      { headers: { 'x-original-exchange': 'orders', 'x-original-routing-key': 'order.created' } },
    );
    expect(originOf(msg)).toEqual({ exchange: 'orders', routingKey: 'order.created' });
  });

  it('falls back to the delivery when the headers are missing or not strings', () => {
    expect(originOf(message({ routingKey: 'q' }))).toEqual({ exchange: '', routingKey: 'q' });
    const odd = message({ routingKey: 'q' }, { headers: { 'x-original-exchange': ['orders'], 'x-original-routing-key': 'k' } });
    expect(originOf(odd)).toEqual({ exchange: '', routingKey: 'q' });
  });
});

describe('ReturnedDeliveries (39)', () => {
  it('excuses one redelivery per return, and only of messages with an id', () => {
    const returned = new ReturnedDeliveries();
    const msg = message({}, { messageId: 'm-1' });
    returned.add(msg);
    expect(returned.take(msg)).toBe(true);
    expect(returned.take(msg)).toBe(false);
    const anonymous = message({});
    returned.add(anonymous);
    expect(returned.take(anonymous)).toBe(false);
  });

  it('forgets the oldest past its limit', () => {
    const returned = new ReturnedDeliveries(2);
    const [a, b, c] = ['a', 'b', 'c'].map((messageId) => message({}, { messageId }));
    for (const msg of [a, b, c]) returned.add(msg);
    expect([returned.take(a), returned.take(b), returned.take(c)]).toEqual([false, true, true]);
  });
});

describe('AckBatcher reports what goes back to the queue (39)', () => {
  it('a requeue, and acks that could not be sent because the channel is gone', async () => {
    let open = true;
    const channel = {
      ack: () => {
        if (!open) throw new Error('Channel closed');
      },
      nack: () => undefined,
    } as unknown as TransportChannel;
    const returned: number[] = [];
    const acks = new AckBatcher(channel, (delivery) => returned.push(delivery.msg.fields.deliveryTag));
    const [d1, d2, d3] = [1, 2, 3].map((tag) => {
      const delivery = new Delivery(message({ deliveryTag: tag }), acks);
      acks.track(delivery);
      return delivery;
    });
    d1.requeue();
    open = false;
    d2.ack();
    acks.flush();
    expect(returned).toEqual([1, 2]);
    d3.requeue();
    expect(returned).toEqual([1, 2, 3]);
  });
});
