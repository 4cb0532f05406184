import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, RpcClient } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, rabbitmqctl, unique } from '../support/broker';
import { listConnections } from '../support/rabbitmq-admin';

/**
 * RabbitMQ 4.3 refuses global QoS (`basic.qos` with `global: true`). The module asks only for
 * per-consumer prefetch: checked on the broker itself, channel by channel, where RabbitMQ still
 * reports a channel's global prefetch (3.x; 4.x no longer lists it).
 */
describe('QoS: per consumer, never global', () => {
  let broker: Broker;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  it("every channel of the app has global prefetch 0; each handler's channel has its own prefetch", async (context) => {
    const help = await rabbitmqctl('list_channels', '--help').catch(
      (error: { stdout?: string; stderr?: string }) => `${error.stdout ?? ''}${error.stderr ?? ''}`,
    );
    if (!help.includes('global_prefetch_count'))
      context.skip('this RabbitMQ (4.x) no longer reports global prefetch; from 4.3 it refuses it');
    const serviceName = unique('qos');
    const small = broker.queue(unique('qos-small')); // with the default policy's retry queues
    const large = broker.queue(unique('qos-large'));
    @Injectable()
    class Handlers {
      @MessageHandler({ queue: small, prefetch: 3 })
      few() {}

      @MessageHandler({ queue: large, prefetch: 40 })
      many(n: number) {
        return n;
      }
    }
    app = await startApp(appModule({ serviceName }, { providers: [Handlers] }));
    await expect(app.get(RpcClient).request(large, 1)).resolves.toBe(1); // the reply channel is open too
    const ours = new Set((await listConnections()).filter((c) => c.name.startsWith(serviceName)).map((c) => c.pid));
    const channels = (await rabbitmqctl('list_channels', 'connection', 'consumer_count', 'prefetch_count', 'global_prefetch_count'))
      .split('\n')
      .map((line) => line.split('\t'))
      .filter(([connection]) => ours.has(connection))
      .map(([, consumers, prefetch, globalPrefetch]) => ({
        consumers: Number(consumers),
        prefetch: Number(prefetch),
        globalPrefetch: Number(globalPrefetch),
      }));
    expect(channels.length).toBeGreaterThanOrEqual(3);
    expect(channels.filter((c) => c.globalPrefetch !== 0)).toEqual([]);
    const consuming = channels.filter((c) => c.consumers > 0 && c.prefetch > 0).map((c) => c.prefetch);
    expect(consuming).toEqual(expect.arrayContaining([3, 40]));
  });
});
