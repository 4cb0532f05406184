import { Injectable, type INestApplicationContext, type LoggerService, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessageHandler, RpcClient, TopologyError, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, ON_MEMORY, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
import { brokerMajorVersion } from '../support/rabbitmq-admin';

/**
 * RabbitMQ 4 gives every quorum queue a delivery limit (20 by default) and, without a
 * dead-letter target, removes a message past it. A quorum handler queue dead-letters into
 * `<queue>.dlq`, so nothing is removed silently; a queue an earlier version declared without that
 * target keeps working, with one warning that says how to give it one.
 */
describe('quorum handler queues dead-letter into <queue>.dlq', () => {
  let broker: Broker;
  const apps: INestApplicationContext[] = [];

  beforeAll(async () => (broker = await Broker.open()));
  afterEach(async () => {
    for (const app of apps.splice(0)) await app.close();
  });
  afterAll(async () => broker.cleanup());

  async function start(module: Type<unknown>, logger: LoggerService = new CaptureLogger()): Promise<INestApplicationContext> {
    const app = await NestFactory.createApplicationContext(module, { logger, abortOnError: false });
    apps.push(app);
    await app.init();
    return app;
  }

  it("past RabbitMQ 4's default delivery limit, a message a handler keeps returning is in the .dlq, not removed", async (context) => {
    if (!ON_MEMORY && (await brokerMajorVersion()) < 4) context.skip('RabbitMQ 3 gives quorum queues no default delivery limit');
    const queue = broker.queue(unique('qq-limit'), []);
    let deliveries = 0;
    @Injectable()
    class Returner {
      @MessageHandler({ queue, queueType: 'quorum', retry: false })
      async handle(_: unknown, ctx: MessageContext) {
        deliveries++;
        await ctx.nack({ requeue: true });
      }
    }
    const app = await start(appModule({}, { providers: [Returner] }));
    await app.get(RpcClient).send(queue, { poison: true }, { messageId: 'returned-forever' });
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the message in the .dlq', 15_000);
    expect(deliveries).toBeGreaterThanOrEqual(20);
    const [letter] = await broker.drainQueue(`${queue}.dlq`);
    expect(letter.properties.messageId).toBe('returned-forever');
    expect(await broker.depth(queue)).toBe(0);
  });

  it('a quorum queue an earlier version declared without a dead-letter target is used as it is, with one warning naming the fix', async () => {
    const queue = broker.queue(unique('qq-earlier'), []);
    await broker.channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    const handled: string[] = [];
    @Injectable()
    class Handler {
      @MessageHandler({ queue, queueType: 'quorum', retry: false })
      handle(body: string) {
        handled.push(body);
      }
    }
    const logger = new CaptureLogger();
    const app = await start(appModule({}, { providers: [Handler] }), logger);
    await app.get(RpcClient).send(queue, 'still handled');
    await waitFor(() => handled.length === 1, 'the message');
    const warnings = logger.matching(/declared by an earlier version with other dead-letter arguments/);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(`queue "${queue}"`);
    expect(warnings[0]).toContain(`x-dead-letter-routing-key "${queue}.dlq"`);
  });

  it('a quorum queue that differs in something else is refused naming that, not the dead-letter arguments', async () => {
    const queue = broker.queue(unique('qq-other'), []);
    await broker.channel.assertQueue(queue, {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': '',
        'x-dead-letter-routing-key': `${queue}.dlq`,
        'x-dead-letter-strategy': 'at-least-once',
        'x-overflow': 'reject-publish',
        'x-max-length': 10,
      },
    });
    @Injectable()
    class Handler {
      @MessageHandler({ queue, queueType: 'quorum', retry: false, queueOptions: { arguments: { 'x-max-length': 20 } } })
      handle() {}
    }
    const error = await start(appModule({}, { providers: [Handler] })).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TopologyError);
    expect((error as Error).message).toContain("inequivalent arg 'x-max-length'");
  });
});
