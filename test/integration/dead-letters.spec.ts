import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { DeadLetters, MessageHandler, RpcClient, UnrecoverableError, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('dead-letter queue and replay', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('replay');
  let broken = true;
  const handled: Array<{ n: number; attempt: number }> = [];
  const unreadable = unique('unreadable-error');
  let unreadableTries = 0;

  /** An app's error whose message is a getter that throws. */
  class Unreadable extends Error {
    override get message(): string {
      throw new TypeError("Cannot read properties of undefined (reading 'detail')");
    }
  }

  @Injectable()
  class Worker {
    @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [0] } })
    handle({ n }: { n: number }, context: MessageContext) {
      if (broken) throw n % 2 ? new UnrecoverableError(`bad ${n}`) : new Error(`flaky ${n}`);
      handled.push({ n, attempt: context.attempt });
    }

    @MessageHandler({ queue: unreadable, retry: { attempts: 2, delaysMs: [0] } })
    unreadable() {
      unreadableTries++;
      throw new Unreadable();
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    broker.queue(unreadable);
    app = await startApp(appModule({}, { providers: [Worker] }));
  });
  afterAll(async () => {
    await app.close();
    await broker.cleanup();
  });

  it('dead-letters with the reason, and replay() puts the messages back with their tries counted afresh', async () => {
    const client = app.get(RpcClient);
    for (let n = 0; n < 6; n++) await client.send(queue, { n }, { headers: { 'x-custom': `c${n}` } });
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 6, '6 dead letters');
    const channel = await broker.connection.createChannel();
    const peek = await channel.get(`${queue}.dlq`, { noAck: false });
    expect(peek && peek.properties.headers).toMatchObject({
      'x-error-name': 'Error',
      'x-error-message': 'flaky 0',
      'x-attempts': 2,
      'x-original-queue': queue,
      'x-custom': 'c0',
    });
    await channel.close(); // returns the peeked message to the queue

    broken = false;
    await expect(app.get(DeadLetters).replay(queue, { limit: 4 })).resolves.toBe(4);
    await expect(app.get(DeadLetters).replay(queue)).resolves.toBe(2);
    await waitFor(() => handled.length === 6, '6 replayed messages handled');
    expect(handled.map((h) => h.n).sort()).toEqual([0, 1, 2, 3, 4, 5]);
    expect(handled.every((h) => h.attempt === 1)).toBe(true);
    expect(await broker.depth(`${queue}.dlq`)).toBe(0);
  });

  it('an error that throws when read is retried and dead-lettered like any failure, its letter saying it could not be read', async () => {
    await app.get(RpcClient).send(unreadable, { n: 1 });
    await waitFor(async () => (await broker.depth(`${unreadable}.dlq`)) === 1, 'the dead letter');
    expect(unreadableTries).toBe(2);
    const [letter] = await broker.drainQueue(`${unreadable}.dlq`);
    expect(letter.properties.headers).toMatchObject({
      'x-error-name': 'MessagingError',
      'x-error-message': 'The handler failed with an error whose name, message or stack cannot be read',
      'x-attempts': 2,
    });
  });
});

describe('a message sent without a message id', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('no-id');
  const seen: Array<{ id: string; attempt: number }> = [];

  @Injectable()
  class Worker {
    @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [0] } })
    handle(_payload: unknown, context: MessageContext) {
      seen.push({ id: context.messageId, attempt: context.attempt });
      throw new Error('always');
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    app = await startApp(appModule({}, { providers: [Worker] }));
  });
  afterAll(async () => {
    await app.close();
    await broker.cleanup();
  });

  it('gets an id the handler sees on every try, and its retry and dead-letter copies keep it', async () => {
    broker.publishRaw(queue, JSON.stringify({ n: 1 }), { contentType: 'application/json' });
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the dead letter');
    expect(seen.map((s) => s.attempt)).toEqual([1, 2]);
    expect(seen[0].id).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1].id).toBe(seen[0].id);
    const [letter] = await broker.drainQueue(`${queue}.dlq`);
    expect(letter.properties.messageId).toBe(seen[0].id);
  });
});

describe('browsing a quorum dead-letter queue again and again', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('browsed');

  @Injectable()
  class Worker {
    @MessageHandler({ queue, queueType: 'quorum', retry: false })
    handle() {
      throw new Error('to the dlq');
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue, []);
    app = await startApp(appModule({}, { providers: [Worker] }));
  });
  afterAll(async () => {
    await app.close();
    await broker.cleanup();
  });

  // Each browse puts every letter back; RabbitMQ 4.0-4.2 (and the in-memory broker, which follows
  // them) count each return toward a quorum queue's delivery limit (20 by default) and drop a
  // letter past it, since a dead-letter queue has no dead-letter target of its own.
  it('loses no letter and keeps their order over 30 browses, past the delivery limit', async () => {
    const client = app.get(RpcClient);
    for (let n = 0; n < 3; n++) await client.send(queue, { n });
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 3, '3 dead letters');
    const letters = app.get(DeadLetters);
    for (let view = 0; view < 30; view++) {
      const page = await letters.browse(queue);
      expect(
        page.letters.map((letter) => JSON.parse(letter.content.toString()) as unknown),
        `view ${view}`,
      ).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    }
    expect(await broker.depth(`${queue}.dlq`)).toBe(3);
  });
});
