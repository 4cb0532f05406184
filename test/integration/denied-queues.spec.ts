import { Injectable } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageHandler, TopologyError } from '../../lib';
import { appModule } from '../support/app';
import { Broker, ON_MEMORY, unique } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
import { deniesFeature } from '../support/rabbitmq-admin';

/**
 * RabbitMQ 4.3 refuses a queue that is neither durable nor exclusive by closing the connection
 * (541), so the declare only hears that its channel ended. A handler declared so fails startup
 * with a TopologyError that names the queue and the option to change, instead of reconnecting
 * into the same refusal. (The module's own queues are never such: the whole suite runs on a
 * broker that denies them, and on `memory://`, which always does.)
 */
describe('a handler queue RabbitMQ 4.3 refuses', () => {
  it('"queueOptions.durable: false" fails startup with a TopologyError naming the queue and the option', async (context) => {
    if (!ON_MEMORY && !(await deniesFeature('transient_nonexcl_queues')))
      context.skip('this RabbitMQ permits transient non-exclusive queues (3.x, or 4.x before 4.3)');
    const broker = await Broker.open();
    const queue = broker.queue(unique('transient'), []);
    @Injectable()
    class Handler {
      @MessageHandler({ queue, queueOptions: { durable: false } })
      handle() {}
    }
    const started = Date.now();
    let app: Awaited<ReturnType<typeof NestFactory.createApplicationContext>> | undefined;
    try {
      const error = await (async () => {
        app = await NestFactory.createApplicationContext(appModule({}, { providers: [Handler] }), {
          logger: new CaptureLogger(),
          abortOnError: false,
        });
        await app.init();
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(TopologyError);
      expect((error as Error).message).toContain(`queue "${queue}"`);
      expect((error as Error).message).toContain('remove "queueOptions.durable: false"');
      expect(Date.now() - started).toBeLessThan(10_000);
      expect(await broker.depth(queue)).toBe(0);
    } finally {
      await app?.close().catch(() => undefined);
      await broker.cleanup();
    }
  });
});
