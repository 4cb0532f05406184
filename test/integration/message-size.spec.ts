import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { EncodeError, MemoryIdempotencyStore, MessageHandler, RpcClient, RpcRemoteError, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

/**
 * `maxMessageBytes` bounds what the module writes, not only what it reads: RabbitMQ 4 closes the
 * channel on a body over its `max_message_size` (16 MiB by default), which would fail every
 * publish in flight beside it. A larger send, reply or outbox row fails alone, before it is written.
 */
describe('message size: nothing larger than maxMessageBytes is written', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  let client: RpcClient;
  const small = unique('size-small');
  const replies = unique('size-reply');
  const received: Array<{ length: number; context: MessageContext }> = [];
  let replyRuns = 0;

  @Injectable()
  class Handlers {
    @MessageHandler({ queue: small, retry: false })
    take(body: string, context: MessageContext) {
      received.push({ length: body.length, context });
    }

    @MessageHandler({ queue: replies, retry: false })
    answer(length: number) {
      replyRuns++;
      return 'r'.repeat(length);
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(small, []);
    broker.queue(replies, []);
    app = await startApp(appModule({ maxMessageBytes: 4096 }, { providers: [Handlers] }));
    client = app.get(RpcClient);
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
  });

  it('a send over maxMessageBytes fails with EncodeError naming the option; nothing reaches the queue; the next send goes', async () => {
    const error = await client.send(small, 'x'.repeat(5000)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(EncodeError);
    expect((error as Error).message).toMatch(/maxMessageBytes \(4096/);
    expect((error as Error).message).toContain(small);
    // Just under the limit (JSON adds the quotes): written and handled.
    await client.send(small, 'y'.repeat(4094));
    await waitFor(() => received.length === 1, 'the message under the limit');
    expect(received.map((r) => r.length)).toEqual([4094]);
    expect(await broker.depth(small)).toBe(0);
  });

  it('a reply over maxMessageBytes: the caller gets that EncodeError as its answer, at once; the request is acked, not retried', async () => {
    const error = await client.request(replies, 5000, { timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({ remoteName: 'EncodeError' });
    expect((error as Error).message).toMatch(/maxMessageBytes \(4096/);
    await expect(client.request(replies, 10)).resolves.toBe('r'.repeat(10));
    expect(replyRuns).toBe(2);
    expect(await broker.depth(replies)).toBe(0);
    expect(await broker.depth(`${replies}.dlq`)).toBe(0);
  });

  it('a body that compresses under maxMessageBytes but would inflate past it is refused too: no handler could take it', async () => {
    const other = await startApp(appModule({ maxMessageBytes: 4096, compression: { algorithm: 'gzip', thresholdBytes: 100 } }, {}));
    try {
      const error = await other
        .get(RpcClient)
        .send(small, 'c'.repeat(50_000))
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EncodeError);
      expect((error as Error).message).toMatch(/50002 bytes, more than maxMessageBytes \(4096/);
    } finally {
      await other.close();
    }
  });

  it('an idempotent request whose reply is too large: its claim is released, so a copy runs again instead of waiting out the lease', async () => {
    const queue = broker.queue(unique('size-idem'), []);
    let runs = 0;
    @Injectable()
    class Idempotent {
      @MessageHandler({ queue, retry: false, idempotent: true })
      answer() {
        runs++;
        return 'i'.repeat(5000);
      }
    }
    const other = await startApp(
      appModule(
        { maxMessageBytes: 4096, idempotency: { store: new MemoryIdempotencyStore(), leaseMs: 60_000 } },
        { providers: [Idempotent] },
      ),
    );
    try {
      // Two copies of one request (same message id), answered to a queue of the test's.
      const answers = broker.queue(unique('size-idem-answers'), []);
      await broker.channel.assertQueue(answers, { durable: true });
      const rpc = other.get(RpcClient);
      await rpc.send(queue, {}, { messageId: 'same-request', replyTo: answers });
      await waitFor(async () => (await broker.depth(answers)) === 1, 'the first answer');
      await rpc.send(queue, {}, { messageId: 'same-request', replyTo: answers });
      await waitFor(async () => (await broker.depth(answers)) === 2, 'the copy to run again (not wait out the 60 s lease)', 5_000);
      expect(runs).toBe(2);
      const replies = await broker.drainQueue(answers);
      expect(replies.map((m) => JSON.parse(m.content.toString()).name)).toEqual(['EncodeError', 'EncodeError']);
    } finally {
      await other.close();
    }
  });

  it("the default is RabbitMQ 4's max_message_size, 16 MiB: one byte more fails before it is written", async () => {
    const other = await startApp(appModule({}, {}));
    try {
      const error = await other
        .get(RpcClient)
        .send(small, 'z'.repeat(16 * 1024 * 1024 - 1)) // 16 MiB + 1 byte with JSON's quotes
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(EncodeError);
      expect((error as Error).message).toMatch(/16777217 bytes, more than maxMessageBytes \(16777216/);
    } finally {
      await other.close();
    }
    expect(received).toHaveLength(1);
  });
});
