import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, RpcClient, UnroutableError, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('commands: RpcClient.send to a @MessageHandler queue', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('commands');
  const slowQueue = unique('slow');
  const received: Array<{ payload: unknown; context: MessageContext }> = [];
  const slow = { inFlight: 0, maxInFlight: 0, done: 0 };

  @Injectable()
  class Handlers {
    @MessageHandler(queue)
    handle(payload: unknown, context: MessageContext) {
      received.push({ payload, context });
    }

    @MessageHandler({ queue: slowQueue, prefetch: 5 })
    async slow() {
      slow.inFlight++;
      slow.maxInFlight = Math.max(slow.maxInFlight, slow.inFlight);
      await new Promise((resolve) => setTimeout(resolve, 20));
      slow.inFlight--;
      slow.done++;
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    broker.queue(slowQueue);
    app = await startApp(appModule({}, { providers: [Handlers] }));
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  beforeEach(() => (received.length = 0));

  it('delivers exactly the payload: nested objects, unicode, a 1 MB body and a Buffer', async () => {
    const client = app.get(RpcClient);
    const nested = { a: { b: [1, 2, { c: null, d: true }] }, n: 1.5 };
    const unicode = { text: 'héllo wörld — 日本語 🚀' };
    const big = { blob: 'x'.repeat(1024 * 1024) };
    const bytes = Buffer.from([0, 1, 2, 254, 255]);
    for (const payload of [nested, unicode, big, bytes]) await client.send(queue, payload);
    await waitFor(() => received.length === 4, '4 messages');
    expect(received[0].payload).toEqual(nested);
    expect(received[1].payload).toEqual(unicode);
    expect(received[2].payload).toEqual(big);
    expect(Buffer.isBuffer(received[3].payload)).toBe(true);
    expect((received[3].payload as Buffer).equals(bytes)).toBe(true);
    expect(received[0].context).toMatchObject({ queue, exchange: '', routingKey: queue, attempt: 1, redelivered: false });
  });

  it('resolves with the message id once confirmed; 200 sends are handled once each', async () => {
    const client = app.get(RpcClient);
    const ids = await Promise.all(Array.from({ length: 200 }, (_, i) => client.send(queue, { i })));
    expect(new Set(ids).size).toBe(200);
    await waitFor(() => received.length >= 200, '200 messages');
    const seen = received.map((r) => (r.payload as { i: number }).i).sort((a, b) => a - b);
    expect(seen).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(received.map((r) => r.context.messageId).sort()).toEqual([...ids].sort());
  });

  it('rejects a send to a missing queue with UnroutableError, and the next send works', async () => {
    const client = app.get(RpcClient);
    const missing = unique('missing');
    await expect(client.send(missing, { x: 1 })).rejects.toBeInstanceOf(UnroutableError);
    await expect(client.send(missing, { x: 1 })).rejects.toThrow(`No queue named "${missing}"`);
    await client.send(queue, { after: true });
    await waitFor(() => received.length === 1, 'the send after the unroutable one');
    expect(received[0].payload).toEqual({ after: true });
  });

  it('honours the handler prefetch: never more than 5 in flight', async () => {
    const client = app.get(RpcClient);
    await Promise.all(Array.from({ length: 40 }, (_, i) => client.send(slowQueue, { i })));
    await waitFor(() => slow.done === 40, '40 slow messages', 15_000);
    expect(slow.maxInFlight).toBe(5);
  });

  it('sends messages persistent by default, with a request id and the sender named', async () => {
    const client = app.get(RpcClient);
    await client.send(queue, { p: 1 });
    await waitFor(() => received.length === 1, 'one message');
    const raw = received[0].context.raw;
    expect(raw.properties.deliveryMode).toBe(2);
    expect(raw.properties.contentType).toBe('application/json');
    expect(typeof raw.properties.headers?.['x-request-id']).toBe('string');
    expect(raw.properties.headers?.['x-origin']).toBe('nestjs-messaging');
  });
});
