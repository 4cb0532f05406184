import { Injectable, type Type } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('events: RpcClient.publish, subscriber groups, competing instances, broadcast', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  const start = (providers: Type<unknown>[], serviceName = 'events') => apps.start(appModule({ serviceName }, { providers }));

  it('gives every bound subscriber group its copy: topic exchange, 3 groups, exact counts', async () => {
    const exchange = broker.exchange(unique('shop'));
    const [billing, audit, shipping] = ['billing', 'audit', 'shipping'].map((g) => broker.queue(unique(g)));
    const counts = { billing: 0, audit: 0, shipping: 0 };
    const keys: string[] = [];
    @Injectable()
    class Subscribers {
      @MessageHandler({ queue: billing, exchange, routingKey: 'order.*' })
      billing(_: unknown, context: MessageContext) {
        counts.billing++;
        keys.push(context.routingKey);
      }

      @MessageHandler({ queue: audit, exchange, routingKey: ['order.created', 'order.paid'] })
      audit() {
        counts.audit++;
      }

      @MessageHandler({ queue: shipping, exchange, routingKey: 'shipment.#' })
      shipping() {
        counts.shipping++;
      }
    }
    const app = await start([Subscribers]);
    const client = app.get(RpcClient);
    for (let i = 0; i < 30; i++) await client.publish(exchange, i % 3 === 0 ? 'order.created' : 'order.cancelled', { i });
    await waitFor(() => counts.billing === 30 && counts.audit === 10, 'billing 30 and audit 10');
    // Everything sent was confirmed and routed; a last marker proves nothing more is on its way.
    await client.publish(exchange, 'order.paid', { last: true });
    await waitFor(() => counts.billing === 31 && counts.audit === 11, 'the marker');
    expect(counts).toEqual({ billing: 31, audit: 11, shipping: 0 });
    expect(keys.filter((k) => k === 'order.created')).toHaveLength(10);
  });

  it('splits a shared queue between two app instances: total exact, none twice', async () => {
    const queue = broker.queue(unique('shared'));
    const seen = new Map<number, string[]>();
    const make = (instance: string) => {
      @Injectable()
      class Worker {
        @MessageHandler({ queue, prefetch: 5 })
        async handle({ i }: { i: number }) {
          await new Promise((resolve) => setTimeout(resolve, 2));
          seen.set(i, [...(seen.get(i) ?? []), instance]);
        }
      }
      return Worker;
    };
    const a = await start([make('a')], 'shared-a');
    await start([make('b')], 'shared-b');
    await Promise.all(Array.from({ length: 300 }, (_, i) => a.get(RpcClient).send(queue, { i })));
    await waitFor(() => seen.size === 300, '300 messages');
    const byInstance = { a: 0, b: 0 } as Record<string, number>;
    for (const handlers of seen.values()) {
      expect(handlers).toHaveLength(1);
      byInstance[handlers[0]]++;
    }
    expect(byInstance.a + byInstance.b).toBe(300);
    expect(byInstance.a).toBeGreaterThan(0);
    expect(byInstance.b).toBeGreaterThan(0);
  });

  it('broadcast: each of three instances gets every message, and its queue goes with it', async () => {
    const exchange = broker.sweep(broker.exchange(unique('config')));
    broker.queue(`${exchange}.events`);
    const got: Record<string, number[]> = { a: [], b: [], c: [] };
    const queues: string[] = [];
    const make = (instance: string) => {
      @Injectable()
      class Listener {
        @MessageHandler({ exchange, routingKey: 'config.changed', broadcast: true })
        handle({ v }: { v: number }, context: MessageContext) {
          got[instance].push(v);
          if (!queues.includes(context.queue)) queues.push(context.queue);
        }
      }
      return Listener;
    };
    const [a] = [await start([make('a')]), await start([make('b')]), await start([make('c')])];
    for (let v = 0; v < 20; v++) await a.get(RpcClient).publish(exchange, 'config.changed', { v });
    await waitFor(() => Object.values(got).every((list) => list.length === 20), 'every instance to get 20');
    for (const list of Object.values(got)) expect(list).toEqual(Array.from({ length: 20 }, (_, v) => v));
    expect(queues).toHaveLength(3);
    await apps.closeAll();
    // Exclusive per-instance queues are gone with their instance.
    for (const queue of queues) expect(await broker.depth(queue)).toBe(0);
    const check = await broker.connection.createChannel();
    check.on('error', () => undefined);
    await expect(check.checkQueue(queues[0])).rejects.toThrow(/NOT_FOUND/);
  });
});
