/**
 * A quorum queue's `x-delivery-limit` and the module's `maxRedeliveries` do not fight: with a
 * broker limit on a handler queue, RabbitMQ alone counts a poison message's returns (the module
 * sends no counting copy, which would set the broker's count back to zero) and, past the limit,
 * dead-letters it into `<queue>.dlq` instead of dropping it.
 */
import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { closeConnections, nodeUrl } from './cluster';

describe('cluster: x-delivery-limit on a quorum handler queue', () => {
  let broker: Broker;
  let app: INestApplicationContext | undefined;
  let release: () => void = () => undefined;

  beforeAll(async () => {
    broker = await Broker.open(nodeUrl(3));
  });

  afterAll(async () => {
    release();
    await app?.close();
    await broker?.cleanup();
  });

  it('bounds a message that kills its consumer: RabbitMQ counts, past its limit it is in the .dlq; maxRedeliveries does not cut in', async () => {
    const queue = broker.queue(unique('cl-limit'));
    const serviceName = unique('svc-limit');
    const deliveryLimit = 3;
    const maxRedeliveries = 1; // lower than the broker's limit: it must not cut in
    const calls: Array<{ redelivered: boolean; deliveryCount: unknown; redeliveries: unknown }> = [];
    const never = new Promise<void>((resolve) => (release = resolve));

    @Injectable()
    class Poisoned {
      @MessageHandler({ queue, queueType: 'quorum', queueOptions: { arguments: { 'x-delivery-limit': deliveryLimit } } })
      async handle(_payload: unknown, context: MessageContext) {
        calls.push({
          redelivered: context.redelivered,
          deliveryCount: context.headers['x-delivery-count'],
          redeliveries: context.headers['x-redeliveries'],
        });
        await never; // "crashes": it never finishes, and the test kills its connection under it
      }
    }
    app = await startApp(
      appModule(
        { uri: nodeUrl(2), serviceName, maxRedeliveries, shutdownTimeoutMs: 500, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } },
        { providers: [Poisoned] },
      ),
    );
    broker.publishRaw(queue, JSON.stringify({ poison: true }), {
      contentType: 'application/json',
      messageId: 'poison-1',
      persistent: true,
    });

    const dlq = `${queue}.dlq`;
    let kills = 0;
    for (;;) {
      await waitFor(
        async () => calls.length > kills || (await broker.depth(dlq)) > 0,
        'the poison message to come again or be dead-lettered',
        20_000,
      );
      if ((await broker.depth(dlq)) > 0) break;
      expect(kills).toBeLessThan(deliveryLimit + 3); // bounded
      expect(await closeConnections(2, `${serviceName}:consumer`, 'cluster test: the consumer dies')).toBe(1);
      kills++;
    }
    const [dead] = await broker.drainQueue(dlq);
    const death = (dead.properties.headers?.['x-death'] as Array<Record<string, unknown>> | undefined)?.[0];
    const figures = {
      kills,
      calls,
      deathReason: death?.reason,
      errorName: dead.properties.headers?.['x-error-name'],
      stillQueued: await broker.depth(queue),
    };
    console.log(`[cluster] x-delivery-limit ${deliveryLimit}, maxRedeliveries ${maxRedeliveries}: ${JSON.stringify(figures)}`);

    expect(dead.properties.messageId).toBe('poison-1');
    expect(death).toMatchObject({ reason: 'delivery_limit', queue });
    expect(dead.properties.headers?.['x-error-name']).toBeUndefined(); // RabbitMQ's dead letter, not the module's
    // Delivered limit + 1 times, the broker counting each return; the module added no count of its own.
    expect(calls).toHaveLength(deliveryLimit + 1);
    expect(calls.map((c) => c.deliveryCount)).toEqual([undefined, 1, 2, 3]);
    expect(calls.every((c) => c.redeliveries === undefined)).toBe(true);
    expect(figures.stillQueued).toBe(0);
  });
});
