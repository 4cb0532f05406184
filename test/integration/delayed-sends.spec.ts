import { Injectable } from '@nestjs/common';
import { InvalidArgumentError, MessageHandler, RpcClient } from '../../lib';
import { delayExchangeName } from '../../lib/topology/delay-queues';
import { MAX_DELAY_MS } from '../../lib/rpc/send-properties';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

/**
 * Delayed sends on both brokers (RELIABILITY.md round 3): 46 (a send whose delay queue was
 * deleted is never confirmed into nothing), 54 (the delay topology goes away with its queue, and
 * one left by an older version still works), 56 (`expirationMs` cannot make a delayed message
 * arrive early). The fault and broker-argument checks are in test/reliability/delayed-sends.spec.ts.
 */
describe('delayed sends: never confirmed into nothing, never early', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  /** A delay no other test uses, so its delay queue is this test's alone. */
  const delay = () => 300 + Math.floor(Math.random() * 700);

  /** An app whose handler on `queue`, bound to `exchange`, records when each message arrives. */
  async function receiver(queue: string, exchange: string) {
    const arrived: number[] = [];
    @Injectable()
    class Receiver {
      @MessageHandler({ queue, exchange, exchangeType: 'topic', routingKey: '#', retry: false })
      handle() {
        arrived.push(Date.now());
      }
    }
    const app = await apps.start(appModule({}, { providers: [Receiver] }));
    return { rpc: app.get(RpcClient), arrived };
  }

  /**
   * A receiver, and one message sent to it through a delay queue (`send` to its queue, or
   * `publish` to its exchange) that has arrived; `again()` sends the next one the same way.
   */
  async function oneDelivered(label: string, how: 'send' | 'publish') {
    const queue = broker.queue(unique(`${label}-q`), []);
    const exchange = broker.exchange(unique(`${label}-x`));
    const delayMs = delay();
    const name = broker.sweep(delayExchangeName(how === 'send' ? '' : exchange, delayMs));
    const { rpc, arrived } = await receiver(queue, exchange);
    const again = () => (how === 'send' ? rpc.send(queue, {}, { delayMs }) : rpc.publish(exchange, 'k', {}, { delayMs }));
    await again();
    await waitFor(() => arrived.length === 1, 'the first delayed message', 5_000);
    return { name, arrived, again };
  }

  it('46: after its delay queue was deleted, a delayed publish still arrives', async () => {
    const { name, arrived, again } = await oneDelivered('delay-46', 'publish');
    await broker.channel.deleteQueue(name);
    await again();
    await waitFor(() => arrived.length === 2, 'the delayed message sent after its delay queue was deleted', 5_000);
  });

  it('46: after its delay queue and exchange were deleted, a delayed send still arrives', async () => {
    const { name, arrived, again } = await oneDelivered('delay-46b', 'send');
    await broker.channel.deleteQueue(name);
    await broker.channel.deleteExchange(name);
    await again();
    await waitFor(() => arrived.length === 2, 'the delayed message sent after its delay topology was deleted', 5_000);
  });

  it('54: deleting a delay queue (as its x-expires does) takes its delay exchange with it', async () => {
    const { name } = await oneDelivered('delay-54', 'publish');
    await broker.channel.deleteQueue(name);
    const check = await broker.connection.createChannel();
    check.on('error', () => undefined);
    await expect(check.checkExchange(name)).rejects.toMatchObject({ code: 404 });
  });

  it('54: a message of the longest delay stays in its delay queue (an x-expires past 2^31 ms is no shorter)', async () => {
    const queue = broker.queue(unique('delay-max'), []);
    const exchange = broker.exchange(unique('delay-maxx'));
    const name = broker.sweep(delayExchangeName(exchange, MAX_DELAY_MS));
    const { rpc } = await receiver(queue, exchange);
    await rpc.publish(exchange, 'k', {}, { delayMs: MAX_DELAY_MS });
    // A Node timer over 2^31 - 1 ms fires at once: had the queue's expiry timer been set so, it is gone by now.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await broker.depth(name)).toBe(1);
  });

  it('54: a delay queue left by an older version (no x-expires) does not break delayed sends', async () => {
    const queue = broker.queue(unique('delay-legacy'), []);
    const exchange = broker.exchange(unique('delay-legacyx'));
    const delayMs = delay();
    // The name and arguments of earlier versions, before delay queues expired.
    const legacy = broker.sweep(`messaging.delay.${delayMs}ms.${exchange}`);
    broker.sweep(delayExchangeName(exchange, delayMs));
    await broker.channel.assertExchange(legacy, 'fanout', { durable: true });
    await broker.channel.assertQueue(legacy, {
      durable: true,
      arguments: { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': exchange },
    });
    await broker.channel.bindQueue(legacy, legacy, '');

    const { rpc, arrived } = await receiver(queue, exchange);
    await rpc.publish(exchange, 'k', {}, { delayMs });
    await waitFor(() => arrived.length === 1, 'the delayed message', 5_000);
  });

  it('56: a delayed send with expirationMs is refused naming both options, and nothing arrives early', async () => {
    const queue = broker.queue(unique('delay-56'), []);
    const exchange = broker.exchange(unique('delay-56x'));
    const delayMs = 1_000 + delay();
    broker.sweep(delayExchangeName('', delayMs));
    broker.sweep(delayExchangeName(exchange, delayMs));
    const { rpc, arrived } = await receiver(queue, exchange);
    const refused = [
      rpc.send(queue, {}, { delayMs, expirationMs: 100 }),
      rpc.publish(exchange, 'k', {}, { delayMs, expirationMs: 100 }),
      rpc.send(queue, {}, { delayMs, expirationMs: delayMs * 2 }),
    ];
    for (const sent of refused) {
      const error = await sent.then(
        () => new Error('resolved'),
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(InvalidArgumentError);
      expect((error as Error).message).toMatch(/expirationMs/);
      expect((error as Error).message).toMatch(/delayMs/);
    }
    // A plain send behind them: whatever was accepted would have arrived by then.
    const sentAt = Date.now();
    await rpc.send(queue, {}, { delayMs });
    await waitFor(() => arrived.length >= 1, 'the delayed message', 5_000);
    expect(arrived).toHaveLength(1);
    expect(arrived[0] - sentAt).toBeGreaterThanOrEqual(delayMs - 10);
  });
});
