import { Injectable, Module, type INestApplicationContext } from '@nestjs/common';
import {
  BrokerUnreachableError,
  MessageHandler,
  MessagingConfigError,
  MessagingModule,
  RpcClient,
  type MessagingOptions,
  type MessagingOptionsFactory,
} from '../../lib';
import { appModule, appsUnderTest, startApp } from '../support/app';
import { BROKER_URL, Broker, unique, waitFor } from '../support/broker';

describe('MessagingModule', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  const start = apps.start;

  /** A handler on a fresh queue that records payloads, and a send through the app's client. */
  function roundTrip() {
    const queue = broker.queue(unique('module'));
    const got: unknown[] = [];
    @Injectable()
    class Handler {
      @MessageHandler(queue)
      handle(payload: unknown) {
        got.push(payload);
      }
    }
    return {
      Handler,
      async check(app: INestApplicationContext) {
        await app.get(RpcClient).send(queue, { ok: 1 });
        await waitFor(() => got.length === 1, 'the message');
        expect(got).toEqual([{ ok: 1 }]);
      },
    };
  }

  it('forRoot connects, finds handlers and delivers', async () => {
    const { Handler, check } = roundTrip();
    await check(await start(appModule({}, { providers: [Handler] })));
  });

  it('forRootAsync with a factory that injects configuration', async () => {
    const { Handler, check } = roundTrip();
    const CONFIG = 'CONFIG';
    @Module({ providers: [{ provide: CONFIG, useValue: { url: BROKER_URL } }], exports: [CONFIG] })
    class ConfigModule {}
    @Module({
      imports: [
        MessagingModule.forRootAsync({
          imports: [ConfigModule],
          inject: [CONFIG],
          useFactory: async (config: { url: string }) => ({ uri: config.url, serviceName: 'factory' }),
        }),
      ],
      providers: [Handler],
    })
    class AppModule {}
    await check(await start(AppModule));
  });

  it('forRootAsync with useClass and with useExisting', async () => {
    @Injectable()
    class Options implements MessagingOptionsFactory {
      createMessagingOptions(): MessagingOptions {
        return { uri: BROKER_URL };
      }
    }
    const first = roundTrip();
    @Module({ imports: [MessagingModule.forRootAsync({ useClass: Options })], providers: [first.Handler] })
    class WithClass {}
    await first.check(await start(WithClass));

    @Module({ providers: [Options], exports: [Options] })
    class OptionsModule {}
    const second = roundTrip();
    @Module({
      imports: [MessagingModule.forRootAsync({ imports: [OptionsModule], useExisting: Options })],
      providers: [second.Handler],
    })
    class WithExisting {}
    await second.check(await start(WithExisting));
  });

  it.each([
    [{ prefetch: 0 }, 'MessagingModule option "prefetch" must be an integer from 1 to 65535 (got 0)'],
    [{ uri: 'http://localhost' }, 'MessagingModule option "uri" must be an amqp:// or amqps:// URL'],
    [{ rpcTimeoutMs: -5 }, 'option "rpcTimeoutMs" must be an integer from 0'],
    [{ retry: { attempts: 0 } }, 'option "retry.attempts" must be an integer from 1 to 1000 (got 0)'],
    [{ prefetc: 5 }, 'MessagingModule has no option "prefetc"'],
  ] as Array<[Record<string, unknown>, string]>)('rejects a wrong option at startup: %j', async (options, message) => {
    const promise = startApp(appModule(options as Partial<MessagingOptions>));
    await expect(promise).rejects.toBeInstanceOf(MessagingConfigError);
    await expect(startApp(appModule(options as Partial<MessagingOptions>))).rejects.toThrow(message);
  });

  it('masks the password in the URL shown in a wrong-option error', async () => {
    await expect(startApp(appModule({ uri: 'amqp://guest:hunter2@' }))).rejects.toThrow(/^(?!.*hunter2)/);
  });

  it('forRootAsync needs exactly one way to build the options', () => {
    expect(() => MessagingModule.forRootAsync({})).toThrow('exactly one of "useFactory", "useClass" or "useExisting"');
  });

  it('fails startup with a clear error, password masked, when no broker answers', async () => {
    const started = Date.now();
    const error = await startApp(
      appModule({ uri: 'amqp://guest:s3cret@127.0.0.1:1', reconnect: { startupTimeoutMs: 1000, initialDelayMs: 100 } }),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect((error as Error).message).toContain('amqp://guest:***@127.0.0.1:1');
    expect((error as Error).message).not.toContain('s3cret');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses two handlers on the same queue that a message could reach both, naming both', async () => {
    const queue = broker.queue(unique('dup'));
    @Injectable()
    class A {
      @MessageHandler(queue) one() {}
    }
    @Injectable()
    class B {
      @MessageHandler(queue) two() {}
    }
    await expect(startApp(appModule({}, { providers: [A, B] }))).rejects.toThrow(
      `Queue "${queue}" has several handlers, but a message can reach both A.one (every message) and B.two (every message)`,
    );
  });

  it('refuses a handler without a queue, naming it', async () => {
    @Injectable()
    class NoQueue {
      @MessageHandler({ exchange: 'x' }) handle() {}
    }
    await expect(startApp(appModule({}, { providers: [NoQueue] }))).rejects.toThrow(
      '@MessageHandler on NoQueue.handle: "queue" is required unless "broadcast" is true',
    );
  });

  it('registerHandlers: false makes a send-only instance', async () => {
    const queue = broker.queue(unique('sendonly'));
    const got: unknown[] = [];
    @Injectable()
    class Handler {
      @MessageHandler(queue) handle(payload: unknown) {
        got.push(payload);
      }
    }
    await start(appModule({}, { providers: [Handler] }));
    const sender = await start(appModule({ registerHandlers: false }, { providers: [Handler] }));
    for (let i = 0; i < 10; i++) await sender.get(RpcClient).send(queue, i);
    await waitFor(() => got.length === 10, '10 messages');
    // Only the consumer app consumes: the send-only one opened no consumer connection.
    const consumers = await broker.channel.checkQueue(queue);
    expect(consumers.consumerCount).toBe(1);
  });

  it('two apps in one process each work on their own (no process-wide state)', async () => {
    const first = roundTrip();
    const second = roundTrip();
    const a = await start(appModule({ serviceName: 'a' }, { providers: [first.Handler] }));
    const b = await start(appModule({ serviceName: 'b' }, { providers: [second.Handler] }));
    await first.check(a);
    await second.check(b);
    expect(a.get(RpcClient)).not.toBe(b.get(RpcClient));
  });
});
