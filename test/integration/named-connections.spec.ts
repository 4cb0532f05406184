import { randomBytes } from 'node:crypto';
import { Injectable, Module, type INestApplicationContext, type Type } from '@nestjs/common';
import { Test } from '@nestjs/testing';
import {
  DeadLetters,
  getDeadLettersToken,
  getMessagingAdminToken,
  getMessagingHealthToken,
  MessagingAdmin,
  getRpcClientToken,
  InjectRpcClient,
  MessageHandler,
  MessagingConfigError,
  MessagingHealth,
  MessagingModule,
  RpcClient,
  UnrecoverableError,
  type MessagingOptions,
} from '../../lib';
import { startApp } from '../support/app';
import { AMQP_URL, Broker, deferred, ON_MEMORY, rabbitmqctl, unique, waitFor } from '../support/broker';
import { listConnections } from '../support/rabbitmq-admin';
import { memoryBrokerFor } from '../../lib/transport/memory/broker-registry';

/**
 * Several forRoot in one app, each a connection of its own: on RabbitMQ two vhosts made for this
 * file (and deleted after it), on memory:// two named in-process brokers. The same queue name
 * exists in both places, so a message that took the wrong connection would be seen.
 */
describe('named connections', () => {
  const suffix = randomBytes(4).toString('hex');
  const places = { a: `t-nc-a-${suffix}`, b: `t-nc-b-${suffix}` };
  const urlOf = (place: string) => {
    if (ON_MEMORY) return `memory://${place}`;
    const url = new URL(AMQP_URL);
    url.pathname = `/${encodeURIComponent(place)}`;
    return url.toString();
  };
  const urls = { a: urlOf(places.a), b: urlOf(places.b) };
  const brokers: Partial<Record<'a' | 'b', Broker>> = {};
  const apps: INestApplicationContext[] = [];
  /** The vhosts this file made on RabbitMQ, to delete after it. */
  const made: string[] = [];

  // rabbitmqctl starts an Erlang VM per call: on a busy machine each takes seconds.
  beforeAll(async () => {
    if (!ON_MEMORY) {
      const user = new URL(AMQP_URL).username || 'guest';
      await Promise.all(
        Object.values(places).map(async (vhost) => {
          await rabbitmqctl('add_vhost', vhost);
          made.push(vhost);
          await rabbitmqctl('set_permissions', '-p', vhost, user, '.*', '.*', '.*');
        }),
      );
    }
    brokers.a = await Broker.open(urls.a);
    brokers.b = await Broker.open(urls.b);
  }, 120_000);

  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });

  afterAll(async () => {
    await brokers.a?.connection.close().catch(() => undefined);
    await brokers.b?.connection.close().catch(() => undefined);
    // Deleting a vhost deletes everything in it.
    await Promise.all(made.map((vhost) => rabbitmqctl('delete_vhost', vhost)));
  }, 120_000);

  /** An app with the default connection on place A and the connection "b" on place B. */
  function twoConnections(providers: Type<unknown>[], a: Partial<MessagingOptions> = {}, b: Partial<MessagingOptions> = {}) {
    @Module({
      imports: [
        MessagingModule.forRoot({ uri: urls.a, serviceName: `nc-a-${suffix}`, ...a }),
        MessagingModule.forRoot({ name: 'b', uri: urls.b, serviceName: `nc-b-${suffix}`, ...b }),
      ],
      providers,
    })
    class TwoConnectionsModule {}
    return TwoConnectionsModule;
  }

  async function start(module: Type<unknown>): Promise<INestApplicationContext> {
    const app = await startApp(module);
    apps.push(app);
    return app;
  }

  /** A handler of the same queue on each connection, recording what each got (`a1`, `b2`...). */
  function sameQueueOnBoth(label: string) {
    const queue = unique(label);
    const got: string[] = [];
    @Injectable()
    class Handlers {
      @MessageHandler(queue)
      onA({ n }: { n: number }) {
        got.push(`a${n}`);
      }

      @MessageHandler({ queue, connection: 'b' })
      onB({ n }: { n: number }) {
        got.push(`b${n}`);
      }
    }
    return { queue, got, Handlers };
  }

  it('gives the handlers of each connection only the messages sent on it', async () => {
    const { queue, got, Handlers } = sameQueueOnBoth('nc-orders');
    @Injectable()
    class Sender {
      constructor(
        readonly onA: RpcClient,
        @InjectRpcClient('b') readonly onB: RpcClient,
      ) {}
    }
    const app = await start(twoConnections([Handlers, Sender]));
    const sender = app.get(Sender);
    expect(sender.onA).not.toBe(sender.onB);
    expect(app.get(getRpcClientToken('b'))).toBe(sender.onB);
    expect(app.get(getRpcClientToken())).toBe(sender.onA);
    await sender.onA.send(queue, { n: 1 });
    await sender.onB.send(queue, { n: 2 });
    await sender.onB.send(queue, { n: 3 });
    await waitFor(() => got.length === 3, 'three messages handled');
    expect(got.sort()).toEqual(['a1', 'b2', 'b3']);
    expect(app.get<MessagingHealth>(getMessagingHealthToken('b')).isReady()).toBe(true);
    expect(app.get(MessagingHealth).isReady()).toBe(true);
  });

  it('answers a request on the connection it came by, and keeps retries and dead letters there', async () => {
    const adder = unique('nc-add');
    const poison = unique('nc-poison');
    @Injectable()
    class Handlers {
      @MessageHandler({ queue: adder, connection: 'b' })
      add({ x, y }: { x: number; y: number }) {
        return x + y;
      }

      @MessageHandler({ queue: poison, connection: 'b', retry: { attempts: 2, delaysMs: [10] } })
      fail() {
        throw new UnrecoverableError('no');
      }
    }
    const app = await start(twoConnections([Handlers]));
    const onB = app.get<RpcClient>(getRpcClientToken('b'));
    await expect(onB.request(adder, { x: 2, y: 3 })).resolves.toBe(5);
    // The queue exists only on B: a request through A has nowhere to go.
    await expect(app.get(RpcClient).request(adder, { x: 1, y: 1 }, { timeoutMs: 2000 })).rejects.toThrow();
    await onB.send(poison, {});
    await waitFor(async () => (await brokers.b!.depth(`${poison}.dlq`)) === 1, 'the dead letter on B');
    expect(await brokers.a!.depth(`${poison}.dlq`).catch(() => 0)).toBe(0);
    // B's operator tools see B: its dead letter goes back to the queue it came from, on B.
    const replayed = await app.get<DeadLetters>(getDeadLettersToken('b')).replay(poison);
    expect(replayed).toBe(1);
    await waitFor(async () => (await brokers.b!.depth(`${poison}.dlq`)) === 1, 'the replayed letter to fail again, on B');
    expect(await app.get<MessagingAdmin>(getMessagingAdminToken('b')).queueDepth(`${poison}.dlq`)).toMatchObject({ messages: 1 });
  });

  it('drains the handlers of every connection before it closes any: a handler on A sends on B while draining', async () => {
    const slow = unique('nc-slow');
    const target = unique('nc-target');
    const started = deferred();
    const release = deferred();
    let sent: string | Error | undefined;
    @Injectable()
    class Handlers {
      constructor(@InjectRpcClient('b') private readonly onB: RpcClient) {}

      @MessageHandler(slow)
      async work() {
        started.resolve();
        await release.promise;
        try {
          sent = await this.onB.send(target, { from: 'a' });
        } catch (error) {
          sent = error as Error;
        }
      }
    }
    await brokers.b!.channel.assertQueue(brokers.b!.queue(target), { durable: true });
    const app = await start(twoConnections([Handlers]));
    await app.get(RpcClient).send(slow, {});
    await started.promise;
    const closed = app.close();
    apps.splice(apps.indexOf(app), 1);
    // Shutdown has begun on both connections; the handler on A now publishes through B.
    await waitFor(() => !app.get(MessagingHealth).isReady(), 'shutdown to start');
    release.resolve();
    await closed;
    expect(sent).toEqual(expect.any(String));
    expect(await brokers.b!.depth(target)).toBe(1);
  });

  /** The broker closes B's consumer connection, as an operator (or a node going away) would. */
  async function closeConsumerOfB(): Promise<void> {
    const name = `nc-b-${suffix}:consumer`;
    if (ON_MEMORY) {
      expect(memoryBrokerFor(urls.b).dropConnections((connection) => connection.name === name)).toBe(1);
      return;
    }
    const own = (await listConnections()).filter((connection) => connection.name === name);
    expect(own).toHaveLength(1);
    await rabbitmqctl('close_connection', own[0].pid, 'named connections test: B alone');
  }

  it('reconnects a connection closed by the broker alone, while the other keeps working', async () => {
    const { queue, got, Handlers } = sameQueueOnBoth('nc-steady');
    const app = await start(twoConnections([Handlers]));
    const healthB = app.get<MessagingHealth>(getMessagingHealthToken('b'));
    await closeConsumerOfB();
    await waitFor(() => !healthB.isReady(), 'B to notice');
    // A is not touched: it handles while B comes back.
    await app.get(RpcClient).send(queue, { n: 1 });
    await waitFor(() => got.includes('a1'), 'A to handle while B reconnects');
    expect(app.get(MessagingHealth).isReady()).toBe(true);
    await waitFor(() => healthB.isReady(), 'B to come back', 15_000);
    await app.get<RpcClient>(getRpcClientToken('b')).send(queue, { n: 2 });
    await waitFor(() => got.includes('b2'), 'B to handle again');
  });

  it('labels every metric with its connection', async () => {
    const { Registry } = await import('prom-client');
    const registry = new Registry();
    const queue = unique('nc-metrics');
    let handled = 0;
    @Injectable()
    class Handlers {
      @MessageHandler(queue)
      onA() {
        handled++;
      }

      @MessageHandler({ queue, connection: 'b' })
      onB() {
        handled++;
      }
    }
    const metrics = { prometheus: { registry } };
    const app = await start(twoConnections([Handlers], { metrics }, { metrics }));
    await app.get(RpcClient).send(queue, {});
    await app.get<RpcClient>(getRpcClientToken('b')).send(queue, {});
    const consumed = () => registry.getSingleMetricAsString('messaging_messages_consumed_total');
    await waitFor(async () => handled === 2 && (await consumed()).split('outcome="acked"').length === 3, 'both acks counted');
    expect(await consumed()).toContain(`messaging_messages_consumed_total{connection="default",queue="${queue}",outcome="acked"} 1`);
    expect(await consumed()).toContain(`messaging_messages_consumed_total{connection="b",queue="${queue}",outcome="acked"} 1`);
  });

  it('refuses two unnamed forRoot, saying to name them', async () => {
    @Module({ imports: [MessagingModule.forRoot({ uri: urls.a }), MessagingModule.forRoot({ uri: urls.b })] })
    class Twice {}
    const failed = await startApp(Twice).then(
      (app) => app.close().then(() => undefined),
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(MessagingConfigError);
    expect((failed as Error).message).toMatch(/more than once without a name.*forRoot\(\{ name:/);
  });

  it('refuses a handler on a connection no forRoot made, naming it and the known ones', async () => {
    @Injectable()
    class Lost {
      @MessageHandler({ queue: unique('nc-lost'), connection: 'analytics' })
      handle() {}
    }
    const failed = await startApp(twoConnections([Lost])).then(
      (app) => app.close().then(() => undefined),
      (error: unknown) => error,
    );
    expect(failed).toBeInstanceOf(MessagingConfigError);
    expect((failed as Error).message).toContain('Lost.handle consumes on the connection "analytics"');
    expect((failed as Error).message).toContain('"default", "b"');
  });

  it('names a forRootAsync connection on forRootAsync itself, and refuses options named otherwise', async () => {
    const queue = unique('nc-async');
    const got = deferred<string>();
    @Injectable()
    class Handler {
      @MessageHandler({ queue, connection: 'b' })
      handle({ via }: { via: string }) {
        got.resolve(via);
      }
    }
    const withAsync = (factoryName?: string) => {
      @Module({
        imports: [
          MessagingModule.forRoot({ uri: urls.a }),
          MessagingModule.forRootAsync({ name: 'b', useFactory: async () => ({ uri: urls.b, name: factoryName }) }),
        ],
        providers: [Handler],
      })
      class AsyncModule {}
      return AsyncModule;
    };
    const app = await start(withAsync());
    await app.get<RpcClient>(getRpcClientToken('b')).send(queue, { via: 'b' });
    await expect(got.promise).resolves.toBe('b');
    await expect(startApp(withAsync('c'))).rejects.toThrow(/forRootAsync\(\{ name: "b" \}\) got options named "c"/);
  });

  it("lets a test override a named connection's RpcClient by its token", async () => {
    const sent: unknown[] = [];
    @Injectable()
    class Notifier {
      constructor(@InjectRpcClient('b') readonly events: RpcClient) {}
    }
    const fake = { publish: async (...args: unknown[]) => void sent.push(args) };
    const moduleRef = await Test.createTestingModule({ imports: [twoConnections([Notifier])] })
      .overrideProvider(getRpcClientToken('b'))
      .useValue(fake)
      .compile();
    apps.push(moduleRef);
    await moduleRef.init();
    await moduleRef.get(Notifier).events.publish('x', 'y', { n: 1 });
    expect(sent).toEqual([['x', 'y', { n: 1 }]]);
    // The default connection is untouched.
    expect(moduleRef.get(RpcClient)).toBeInstanceOf(RpcClient);
  });

  it('refuses a name that cannot make a token, naming the option', () => {
    expect(() => MessagingModule.forRoot({ name: 'has space', uri: urls.a })).toThrow(/option "name"/);
    expect(() => MessagingModule.forRootAsync({ name: '', useFactory: () => ({ uri: urls.a }) })).toThrow(/option "name"/);
  });
});
