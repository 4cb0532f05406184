/**
 * MessagingAdmin.deleteHandlerQueues: the queues a removed handler left behind go, and never one
 * that holds a message or has a consumer.
 */
import { Injectable } from '@nestjs/common';
import { InvalidArgumentError, MessageHandler, MessagingAdmin, RpcClient } from '../../lib';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('MessagingAdmin.deleteHandlerQueues', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  /** An app whose handler on `queue` (default retry policy: 1000 and 5000 ms) always fails its message. */
  async function handlerLeavingQueues(queue: string, retry: { attempts: number; delaysMs: number[] } | false = false) {
    const failed: unknown[] = [];
    @Injectable()
    class Removed {
      @MessageHandler({ queue, retry })
      handle(payload: unknown) {
        failed.push(payload);
        throw new Error('removed handler');
      }
    }
    const app = await apps.start(appModule({}, { providers: [Removed] }));
    return { app, failed };
  }

  it("deletes the retry queues of the module's policy, the queue and its DLQ, once the handler is gone", async () => {
    const queue = broker.queue(unique('gone'));
    const old = await handlerLeavingQueues(queue, { attempts: 3, delaysMs: [1000, 5000] });
    await old.app.close();
    for (const name of [queue, `${queue}.dlq`, `${queue}.retry.1000ms`, `${queue}.retry.5000ms`])
      expect(await broker.exists(name)).toBe(true);

    const app = await apps.start(appModule({}));
    await expect(app.get(MessagingAdmin).deleteHandlerQueues(queue)).resolves.toEqual({
      deleted: [`${queue}.retry.1000ms`, `${queue}.retry.5000ms`, queue, `${queue}.dlq`],
      absent: [],
      kept: [],
    });
    for (const name of [queue, `${queue}.dlq`, `${queue}.retry.1000ms`, `${queue}.retry.5000ms`])
      expect(await broker.exists(name)).toBe(false);
    // Twice is harmless: everything is absent.
    await expect(app.get(MessagingAdmin).deleteHandlerQueues(queue, { retryDelaysMs: [] })).resolves.toEqual({
      deleted: [],
      absent: [queue, `${queue}.dlq`],
      kept: [],
    });
  });

  it('keeps a DLQ that holds a letter, and the letter in it; the rest goes', async () => {
    const queue = broker.queue(unique('letters'), []);
    const old = await handlerLeavingQueues(queue);
    await old.app.get(RpcClient).send(queue, { keep: 'me' });
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the dead letter');
    await old.app.close();

    const app = await apps.start(appModule({}));
    await expect(app.get(MessagingAdmin).deleteHandlerQueues(queue, { retryDelaysMs: [] })).resolves.toEqual({
      deleted: [queue],
      absent: [],
      kept: [{ queue: `${queue}.dlq`, reason: 'not empty' }],
    });
    const [letter] = await broker.drainQueue(`${queue}.dlq`);
    expect(JSON.parse(letter.content.toString())).toEqual({ keep: 'me' });
  });

  it('keeps a queue another instance still consumes', async () => {
    const queue = broker.queue(unique('in-use'), []);
    await handlerLeavingQueues(queue); // still running: another instance of the old version
    const app = await apps.start(appModule({}));
    await expect(app.get(MessagingAdmin).deleteHandlerQueues(queue, { retryDelaysMs: [] })).resolves.toEqual({
      deleted: [`${queue}.dlq`],
      absent: [],
      kept: [{ queue, reason: 'in use' }],
    });
  });

  it('refuses a queue this app consumes, and delays that are not whole milliseconds, deleting nothing', async () => {
    const queue = broker.queue(unique('mine'), []);
    const { app } = await handlerLeavingQueues(queue);
    const admin = app.get(MessagingAdmin);
    const consumed = admin.deleteHandlerQueues(queue);
    await expect(consumed).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(consumed).rejects.toThrow(
      `Option "deleteHandlerQueues(name)" must be the queue of a handler that no longer exists, not one Removed.handle consumes in this application (got "${queue}")`,
    );
    await expect(admin.deleteHandlerQueues(unique('other'), { retryDelaysMs: [1.5] })).rejects.toThrow(
      'Option "retryDelaysMs" must be an array of whole milliseconds from 0 to 2^31 - 1 (got "[1.5]")',
    );
    expect(await broker.exists(queue)).toBe(true);
    expect(await broker.exists(`${queue}.dlq`)).toBe(true);
  });
});
