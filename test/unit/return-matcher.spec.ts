import { ReturnMatcher } from '../../lib/publisher/return-matcher';
import type { PublishJob } from '../../lib/transport/outgoing';
import type { Message } from '../../lib/transport/transport.interface';

describe('ReturnMatcher', () => {
  const job = (messageId: string, exchange = 'ex', routingKey = 'rk', mandatory = true): PublishJob => ({
    message: { exchange, routingKey, properties: { messageId, mandatory } },
    deadline: Infinity,
    settle: () => undefined,
    seq: 0,
    returnKey: mandatory ? messageId : undefined,
    returned: false,
  });
  const returned = (messageId: string | undefined, exchange = 'ex', routingKey = 'rk') =>
    ({ fields: { exchange, routingKey }, properties: { messageId, headers: {} }, content: Buffer.alloc(0) }) as unknown as Message;

  it('marks the in-flight publish a return names by id, exchange and routing key', () => {
    const matcher = new ReturnMatcher();
    const a = job('a');
    const b = job('b');
    matcher.written(a);
    matcher.written(b);
    matcher.returned(returned('b'));
    expect([a.returned, b.returned]).toEqual([false, true]);
  });

  it('ignores a return whose route is not the publish of that id, or that has no id', () => {
    const matcher = new ReturnMatcher();
    const a = job('a', 'ex', 'rk');
    matcher.written(a);
    matcher.returned(returned('a', 'ex', 'other'));
    matcher.returned(returned('a', 'other', 'rk'));
    matcher.returned(returned(undefined));
    expect(a.returned).toBe(false);
  });

  it("makes a second publish with the same id wait for the first one's confirm, whatever its route", () => {
    const matcher = new ReturnMatcher();
    const first = job('same', 'ex', 'rk');
    matcher.written(first);
    expect(matcher.waitsForTwin(job('same', 'ex', 'rk'))).toBe(true);
    expect(matcher.waitsForTwin(job('same', 'ex2', 'rk2'))).toBe(true);
    expect(matcher.waitsForTwin(job('other'))).toBe(false);
    expect(matcher.waitsForTwin(job('same', 'ex', 'rk', false))).toBe(false); // not mandatory: no return to match
    matcher.confirmed(first);
    expect(matcher.waitsForTwin(job('same'))).toBe(false);
    matcher.returned(returned('same'));
    expect(first.returned).toBe(false); // confirmed: no later return concerns it
  });
});
