/**
 * Mistakes that used to be silent at startup: handlers that nothing consumes for. Each case reads
 * the message a user gets. Classes are declared inside each test: a @MessageHandler class counts
 * from the moment its decorator runs, and each is named once per process.
 */
import { Injectable, Module, type INestApplicationContext, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageHandler, MessagingConfigError, MessagingModule, RpcClient } from '../../lib';
import { CaptureLogger } from '../support/capture-logger';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('startup mistakes that nothing would consume for', () => {
  let broker: Broker;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => (broker = await Broker.open()));
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => broker.cleanup());

  async function start(module: Type<unknown>, logger = new CaptureLogger()): Promise<CaptureLogger> {
    const app = await NestFactory.createApplicationContext(module, { logger, abortOnError: false });
    apps.push(app);
    await app.init();
    return logger;
  }

  it('imports: [MessagingModule] without any forRoot fails startup, saying to import forRoot', async () => {
    const queue = broker.queue(unique('bare'));
    @Injectable()
    class BareOrders {
      @MessageHandler(queue) handle() {}
    }
    @Module({ imports: [MessagingModule], providers: [BareOrders] })
    class AppModule {}

    const failed = start(AppModule);
    await expect(failed).rejects.toBeInstanceOf(MessagingConfigError);
    await expect(failed).rejects.toThrow(
      'MessagingModule is imported without forRoot, and no MessagingModule.forRoot is imported anywhere in this application: ' +
        "no handler consumes and nothing can send. Import MessagingModule.forRoot({ uri: 'amqp://user:password@host:5672' }) " +
        "once, in the root module (uri: 'memory://' runs without a broker)",
    );
  });

  it('imports: [MessagingModule] in a feature module beside a forRoot in the root is harmless', async () => {
    const queue = broker.queue(unique('feature'));
    const got: unknown[] = [];
    @Injectable()
    class FeatureOrders {
      @MessageHandler(queue) handle(payload: unknown) {
        got.push(payload);
      }
    }
    @Module({ imports: [MessagingModule], providers: [FeatureOrders] })
    class OrdersModule {}

    const logger = await start(appModule({}, { imports: [OrdersModule] }));
    await apps[0].get(RpcClient).send(queue, { n: 1 });
    await waitFor(() => got.length === 1, 'the message');
    expect(logger.find('FeatureOrders', 'warn')).toEqual([]);
  });

  it('a @MessageHandler class that no module lists is named in a warning, once, and the listed ones still consume', async () => {
    const queue = broker.queue(unique('listed'));
    const got: unknown[] = [];
    @Injectable()
    class ForgottenHandlers {
      @MessageHandler(unique('forgotten')) handle() {}
    }
    @Injectable()
    class ListedHandlers {
      @MessageHandler(queue) handle(payload: unknown) {
        got.push(payload);
      }
    }

    const logger = await start(appModule({}, { providers: [ListedHandlers] }));
    expect(logger.find('ForgottenHandlers', 'warn').map((line) => line.message)).toEqual([
      'ForgottenHandlers has @MessageHandler methods, but no module of this application lists it as a provider or controller: ' +
        'nothing consumes for it. Add ForgottenHandlers to the providers of a module the application imports ' +
        '(or ignore this if another application in this process has it)',
    ]);
    expect(logger.find('ListedHandlers', 'warn')).toEqual([]);
    await apps[0].get(RpcClient).send(queue, { n: 1 });
    await waitFor(() => got.length === 1, 'the message');
    // Named once per process: a second app without it does not say it again.
    const again = await start(appModule({}, { providers: [ListedHandlers] }));
    expect(again.find('ForgottenHandlers', 'warn')).toEqual([]);
    void ForgottenHandlers; // only its decorator matters here
  });

  it('a handler inherited from a base class counts as had through the subclass', async () => {
    const queue = broker.queue(unique('inherited'));
    const got: unknown[] = [];
    class BaseHandlers {
      @MessageHandler(queue) handle(payload: unknown) {
        got.push(payload);
      }
    }
    @Injectable()
    class OrderHandlers extends BaseHandlers {}

    const logger = await start(appModule({}, { providers: [OrderHandlers] }));
    expect(logger.find('BaseHandlers', 'warn')).toEqual([]);
    await apps[0].get(RpcClient).send(queue, { n: 1 });
    await waitFor(() => got.length === 1, 'the message');
  });
});
