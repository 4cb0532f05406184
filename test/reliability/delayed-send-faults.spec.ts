import * as amqp from 'amqplib';
import { PublishTimeoutError, RpcClient, TopologyError } from '../../lib';
import { delayExchangeName } from '../../lib/topology/delay-queues';
import { MAX_DELAY_MS } from '../../lib/rpc/send-properties';
import { appModule } from '../support/app';
import { AMQP_URL, rabbitmqctl, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, faultRig, outcome, startAppLogged, within } from './helpers';

/**
 * RELIABILITY.md round 3, delayed sends on RabbitMQ: 46 with `declare: false` (an operator's delay
 * queue gone: the send rejects), 54 (what the broker is told: delay queues expire, their exchanges
 * go with them) and every part of a delayed send, the on-demand declaration included, within the
 * send's timeout while the app's publisher socket takes nothing. The behaviour on both brokers is
 * in test/integration/delayed-sends.spec.ts.
 */
describe('reliability: delayed sends', () => {
  const rig = faultRig();
  const { apps, proxies } = rig;

  /** A delay no other test uses, so its delay queue is this test's alone. */
  const delay = () => 300 + Math.floor(Math.random() * 700);

  async function start(options: Parameters<typeof appModule>[0]) {
    const app = await startAppLogged(appModule({ serviceName: unique('svc-delay'), ...options }), new CaptureLogger());
    apps.push(app);
    return app.get(RpcClient);
  }

  /** `rabbitmqctl list_<what> name <column>` as a map from name to the column's text. */
  async function listed(what: 'queues' | 'exchanges', column: string): Promise<Map<string, string>> {
    const out = await rabbitmqctl(`list_${what}`, 'name', column);
    return new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split('\t') as [string, string]),
    );
  }

  it('46: with declare: false, a delayed send whose delay queue the operator lost rejects instead of resolving', async () => {
    const queue = rig.broker.queue(unique('delay-op'), []);
    const delayMs = delay();
    const name = rig.broker.sweep(delayExchangeName('', delayMs));
    await rig.broker.channel.assertQueue(queue, { durable: true });
    // The operator made the delay exchange, but its queue is gone.
    await rig.broker.channel.assertExchange(name, 'fanout', { durable: true });
    const client = await start({ declare: false });
    const sent = await outcome(client.send(queue, {}, { delayMs }));
    expect(sent.ok).toBe(false);
    expect((sent as { error: unknown }).error).toBeInstanceOf(TopologyError);
    expect(String((sent as { error: unknown }).error)).toContain(name);
  });

  it('46: a delayed publish whose delay queue is gone while its exchange stays (bound elsewhere) is declared again and arrives', async () => {
    const queue = rig.broker.queue(unique('delay-kept'), []);
    const exchange = rig.broker.exchange(unique('delay-keptx'));
    const elsewhere = rig.broker.exchange(unique('delay-elsewhere'));
    const delayMs = delay();
    const name = rig.broker.sweep(delayExchangeName(exchange, delayMs));
    await rig.broker.channel.assertQueue(queue, { durable: true });
    await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
    await rig.broker.channel.bindQueue(queue, exchange, '#');
    const client = await start({});
    await client.publish(exchange, 'k', {}, { delayMs });
    await waitFor(async () => (await rig.broker.depth(queue)) === 1, 'the first delayed message', 5_000);

    // A binding of its own keeps the auto-delete delay exchange when its queue goes: it then routes
    // to no queue, and only the mandatory flag tells.
    const connection = await amqp.connect(AMQP_URL);
    try {
      const channel = await connection.createChannel();
      await channel.assertExchange(elsewhere, 'fanout', { durable: false });
      await channel.bindExchange(elsewhere, name, '');
      await channel.deleteQueue(name);
      await channel.checkExchange(name);
    } finally {
      await connection.close();
    }
    await client.publish(exchange, 'k', {}, { delayMs });
    await waitFor(async () => (await rig.broker.depth(queue)) === 2, 'the delayed message sent after its delay queue was deleted', 5_000);
  });

  it('54: a delay queue expires when unused (x-expires longer than its delay) and its exchange goes with it', async () => {
    const exchange = rig.broker.exchange(unique('delay-54'));
    const delayMs = delay();
    const name = rig.broker.sweep(delayExchangeName(exchange, delayMs));
    await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
    const client = await start({});
    await client.publish(exchange, 'k', {}, { delayMs });

    const args = (await listed('queues', 'arguments')).get(name);
    const expires = Number(/\{"x-expires",(\d+)\}/.exec(args ?? '')?.[1]);
    expect(expires, `x-expires of ${name} in ${args}`).toBeGreaterThanOrEqual(delayMs + 60_000);
    expect((await listed('exchanges', 'auto_delete')).get(name)).toBe('true');
  });

  it('54: the longest delay declares a queue RabbitMQ takes (x-expires past 2^31 ms)', async () => {
    const exchange = rig.broker.exchange(unique('delay-max'));
    const name = rig.broker.sweep(delayExchangeName(exchange, MAX_DELAY_MS));
    await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
    const client = await start({});
    await client.publish(exchange, 'k', {}, { delayMs: MAX_DELAY_MS });
    expect(await rig.broker.depth(name)).toBe(1);
  });

  describe('while the publisher socket takes nothing, a delayed send rejects within its timeout like any send', () => {
    async function held(stop: (proxy: TcpProxy, serviceName: string) => void, timeoutMs?: number) {
      const proxy = await TcpProxy.start();
      proxies.push(proxy);
      const serviceName = unique('svc-delay-held');
      const queue = rig.broker.queue(unique('delay-held'), []);
      const exchange = rig.broker.exchange(unique('delay-heldx'));
      await rig.broker.channel.assertQueue(queue, { durable: true });
      await rig.broker.channel.assertExchange(exchange, 'topic', { durable: false });
      await rig.broker.channel.bindQueue(queue, exchange, '#');
      const delayMs = delay();
      rig.broker.sweep(delayExchangeName('', delayMs));
      rig.broker.sweep(delayExchangeName(exchange, delayMs));
      const client = await start({ serviceName, uri: proxy.url(), publishTimeoutMs: 1_000 });
      stop(proxy, serviceName);

      const started = Date.now();
      const sends = {
        plain: outcome(client.send(queue, {}, { timeoutMs })),
        send: outcome(client.send(queue, {}, { delayMs, timeoutMs })),
        publish: outcome(client.publish(exchange, 'k', {}, { delayMs, timeoutMs })),
      };
      for (const [what, sent] of Object.entries(sends)) {
        const result = await within(sent, 6_000, 'still pending after 6 s' as const);
        expect(result, what).not.toBe('still pending after 6 s');
        const error = (result as { error?: unknown }).error;
        expect(error, what).toBeInstanceOf(PublishTimeoutError);
        expect((result as { at: number }).at - started, what).toBeLessThan(1_000 + 1_000);
      }

      // Once the socket moves again, delayed sends go through and arrive.
      proxy.resume();
      await client.publish(exchange, 'k', { after: true }, { delayMs });
      await waitFor(async () => (await rig.broker.depth(queue)) >= 2, 'the delayed message sent after the socket came back', 10_000);
      await rig.broker.channel.purgeQueue(queue);
    }

    it('held on the app publisher connection only (holdSending), timeoutMs given', async () => {
      await held((proxy, serviceName) => expect(proxy.holdSending(`${serviceName}:publisher`)).toBe(1), 1_000);
    });

    it('a stalled socket, the module publishTimeoutMs', async () => {
      await held((proxy) => proxy.stall());
    });
  });
});
