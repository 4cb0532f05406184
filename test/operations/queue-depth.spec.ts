import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, MessagingAdmin, QueueNotFoundError } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique } from '../support/broker';

/** MessagingAdmin.queueDepth: what an autoscaler (KEDA, an HPA on an external metric) reads. */
describe('MessagingAdmin.queueDepth', () => {
  const waiting = unique('depth-waiting');
  const consumed = unique('depth-consumed');
  let broker: Broker;
  let app: INestApplicationContext;

  @Injectable()
  class Consumer {
    @MessageHandler(consumed)
    handle(): void {}
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(waiting);
    broker.queue(consumed);
    await broker.channel.assertQueue(waiting, { durable: true });
    for (let i = 0; i < 3; i++) broker.publishRaw(waiting, JSON.stringify({ i }));
    app = await startApp(appModule({ serviceName: unique('svc-depth') }, { providers: [Consumer] }));
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  it('counts the ready messages and the consumers of a queue', async () => {
    const admin = app.get(MessagingAdmin);
    await expect.poll(() => admin.queueDepth(waiting)).toEqual({ messages: 3, consumers: 0 });
    expect(await admin.queueDepth(consumed)).toEqual({ messages: 0, consumers: 1 });
  });

  it('fails with QueueNotFoundError for a queue that does not exist, and does not create it', async () => {
    const missing = unique('depth-missing');
    broker.queue(missing);
    const admin = app.get(MessagingAdmin);
    const error = await admin.queueDepth(missing).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(QueueNotFoundError);
    expect(error).toMatchObject({ queue: missing });
    const channel = await broker.connection.createChannel();
    await expect(channel.checkQueue(missing)).rejects.toMatchObject({ code: 404 });
    // And the module's own connection is fine: the passive check used a throwaway channel.
    expect(await admin.queueDepth(consumed)).toEqual({ messages: 0, consumers: 1 });
  });
});
