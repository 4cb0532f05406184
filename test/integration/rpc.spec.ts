import { Injectable, type INestApplicationContext, type Type } from '@nestjs/common';
import { defer, delay, of, throwError } from 'rxjs';
import { MessageHandler, RpcClient, RpcRemoteError, RpcTimeoutError, UnroutableError, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';

describe('RpcClient: request/response, async replies, scatter-gather', () => {
  let broker: Broker;
  const apps: INestApplicationContext[] = [];
  const square = unique('square');
  const fails = unique('fails');
  const nothing = unique('nothing');
  const observable = unique('observable');
  const slow = unique('slow');
  const echoCorrelation = unique('async');
  const results = unique('results');
  const unreadable = unique('unreadable');
  const slowStarted: number[] = [];
  const asyncReplies: Array<{ payload: unknown; context: MessageContext }> = [];

  class BadInput extends Error {
    override name = 'BadInput';
  }

  /** An app's error that throws when its status is read (a getStatus() reading what is not there). */
  class Unreadable extends Error {
    getStatus(): number {
      throw new TypeError("Cannot read properties of undefined (reading 'status')");
    }
  }

  @Injectable()
  class Server {
    @MessageHandler(square)
    square(n: number) {
      return n * n;
    }

    @MessageHandler(fails)
    async fails() {
      throw new BadInput('quantity must be positive');
    }

    @MessageHandler(nothing)
    nothing() {}

    @MessageHandler(observable)
    observable(kind: string) {
      return kind === 'ok' ? defer(() => of(1, 2, 3).pipe(delay(1))) : throwError(() => new BadInput('from observable'));
    }

    @MessageHandler(slow)
    async slow(ms: number) {
      slowStarted.push(ms);
      await new Promise((resolve) => setTimeout(resolve, ms));
      return ms;
    }

    @MessageHandler(echoCorrelation)
    total(order: { items: number[] }) {
      return { total: order.items.reduce((a, b) => a + b, 0) };
    }

    @MessageHandler(results)
    receipt(payload: unknown, context: MessageContext) {
      asyncReplies.push({ payload, context });
    }

    @MessageHandler(unreadable)
    unreadable() {
      throw new Unreadable('never read');
    }
  }

  let client: RpcClient;

  beforeAll(async () => {
    broker = await Broker.open();
    for (const q of [square, fails, nothing, observable, slow, echoCorrelation, results, unreadable]) broker.queue(q);
    const app = await startApp(appModule({ rpcTimeoutMs: 5000 }, { providers: [Server] }));
    apps.push(app);
    client = app.get(RpcClient);
  });

  afterAll(async () => {
    for (const app of apps.splice(0)) await app.close();
    await broker.cleanup();
  });

  afterEach(() => expect(client.pendingRequests).toBe(0));

  it("returns the handler's value", async () => {
    await expect(client.request(square, 12)).resolves.toBe(144);
  });

  it('1,000 concurrent requests each get their own answer', async () => {
    const answers = await Promise.all(Array.from({ length: 1000 }, (_, n) => client.request<number>(square, n)));
    expect(answers).toEqual(Array.from({ length: 1000 }, (_, n) => n * n));
  });

  it('a remote error that throws when read still answers: the caller is told so at once, nothing is retried or dead-lettered', async () => {
    const error = await client.request(unreadable, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({ message: 'The handler failed with an error whose name, message or status cannot be read' });
    expect(await broker.depth(unreadable)).toBe(0);
    expect(await broker.depth(`${unreadable}.dlq`)).toBe(0);
    await expect(client.request(square, 3)).resolves.toBe(9);
  });

  it('a remote throw rejects with RpcRemoteError carrying the remote name and message; the request is not retried', async () => {
    const error = await client.request(fails, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcRemoteError);
    expect(error).toMatchObject({ remoteName: 'BadInput', message: 'quantity must be positive' });
    expect(await broker.depth(`${fails}.dlq`)).toBe(0);
    expect(await broker.depth(`${fails}.retry.1000ms`)).toBe(0);
  });

  it('a handler returning undefined replies null; an Observable replies its last value or its error', async () => {
    await expect(client.request(nothing, {})).resolves.toBeNull();
    await expect(client.request(observable, 'ok')).resolves.toBe(3);
    await expect(client.request(observable, 'fail')).rejects.toMatchObject({ remoteName: 'BadInput', message: 'from observable' });
  });

  it('times out against a queue with no consumer, and the expired request never runs later', async () => {
    const idle = broker.queue(unique('idle'));
    await broker.channel.assertQueue(idle, { durable: true });
    const started = Date.now();
    const error = await client.request(idle, 7, { timeoutMs: 300 }).catch((e: unknown) => e);
    const took = Date.now() - started;
    expect(error).toBeInstanceOf(RpcTimeoutError);
    expect((error as Error).message).toBe(`No reply from "${idle}" within 300 ms`);
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(1000);
    // The request carried expiration = timeout: the broker drops it once it is due.
    await waitFor(async () => (await broker.depth(idle)) === 0, 'the request to expire in the broker', 5000);
    const late: unknown[] = [];
    @Injectable()
    class LateServer {
      @MessageHandler(idle) handle(n: unknown) {
        late.push(n);
        return n;
      }
    }
    const lateApp = await startApp(appModule({ serviceName: 'late' }, { providers: [LateServer] }));
    apps.push(lateApp);
    await expect(client.request(idle, 8)).resolves.toBe(8);
    expect(late).toEqual([8]);
  });

  it('drops and counts a reply that arrives after the timeout', async () => {
    const dropped = client.droppedReplies;
    await expect(client.request(slow, 300, { timeoutMs: 100 })).rejects.toBeInstanceOf(RpcTimeoutError);
    await waitFor(() => client.droppedReplies === dropped + 1, 'the late reply to be dropped', 3000);
    expect(client.pendingRequests).toBe(0);
  });

  it('rejects at once when the AbortSignal aborts, and frees the entry', async () => {
    const controller = new AbortController();
    const pending = client.request(slow, 200, { signal: controller.signal, timeoutMs: 5000 });
    await waitFor(() => slowStarted.includes(200), 'the handler to start');
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    expect(client.pendingRequests).toBe(0);
    const aborted = new AbortController();
    aborted.abort();
    await expect(client.request(square, 2, { signal: aborted.signal })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('rejects with UnroutableError at once when no queue exists', async () => {
    const started = Date.now();
    await expect(client.request(unique('nobody'), 1, { timeoutMs: 5000 })).rejects.toBeInstanceOf(UnroutableError);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('drops and counts replies with an unknown or an already answered correlation id', async () => {
    const dropped = client.droppedReplies;
    const spyQueue = broker.queue(unique('spy'));
    const seen = deferred<MessageContext>();
    @Injectable()
    class Spy {
      @MessageHandler(spyQueue)
      capture(_: unknown, context: MessageContext) {
        // A stranger answers on our reply address with a correlation id nobody waits for.
        broker.publishRaw(context.replyTo!, '"forged"', { correlationId: 'forged', contentType: 'application/json' });
        seen.resolve(context);
        return 'real';
      }
    }
    apps.push(await startApp(appModule({ serviceName: 'spy' }, { providers: [Spy] })));
    await expect(client.request(spyQueue, 1)).resolves.toBe('real');
    const context = await seen.promise;
    broker.publishRaw(context.replyTo!, '"again"', { correlationId: context.correlationId, contentType: 'application/json' });
    // At least these two: a late reply to an earlier test's timed-out call may be dropped meanwhile too.
    await waitFor(() => client.droppedReplies >= dropped + 2, 'both stray replies to be dropped', 10_000);
  });

  it('async request/response: send with replyTo reaches the reply handler correlated by the message id', async () => {
    const id = await client.send(echoCorrelation, { items: [1, 2, 3] }, { replyTo: results });
    await waitFor(() => asyncReplies.length === 1, 'the async reply');
    expect(asyncReplies[0].payload).toEqual({ total: 6 });
    expect(asyncReplies[0].context.correlationId).toBe(id);
  });

  describe('gather', () => {
    const exchange = unique('inventory');
    const responders: INestApplicationContext[] = [];

    function responder(name: string, waitMs: number): Type<unknown> {
      @Injectable()
      class Responder {
        @MessageHandler({ exchange, routingKey: 'stock.query', broadcast: true })
        async answer(sku: string) {
          await new Promise((resolve) => setTimeout(resolve, waitMs));
          return { name, sku };
        }
      }
      return Responder;
    }

    beforeAll(async () => {
      broker.sweep(broker.exchange(exchange));
      broker.queue(`${exchange}.r1`);
      broker.queue(`${exchange}.r2`);
      broker.queue(`${exchange}.r3`);
      for (const [name, wait] of [
        ['r1', 0],
        ['r2', 10],
        ['r3', 1500],
      ] as const) {
        const app = await startApp(appModule({ serviceName: name }, { providers: [responder(name, wait)] }));
        responders.push(app);
        apps.push(app);
      }
    });

    it('resolves early with `expect` answers', async () => {
      const started = Date.now();
      const answers = await client.gather<{ name: string }>(exchange, 'stock.query', 'sku-1', { expect: 3, timeoutMs: 5000 });
      expect(answers.map((a) => a.name).sort()).toEqual(['r1', 'r2', 'r3']);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    it('resolves at the deadline with what arrived; a slow responder does not delay it', async () => {
      const started = Date.now();
      const answers = await client.gather<{ name: string }>(exchange, 'stock.query', 'sku-2', { timeoutMs: 700 });
      const took = Date.now() - started;
      expect(answers.map((a) => a.name).sort()).toEqual(['r1', 'r2']);
      expect(took).toBeGreaterThanOrEqual(690);
      expect(took).toBeLessThan(1200);
    });

    it('resolves with an empty array when nobody is bound', async () => {
      await expect(client.gather(exchange, 'nobody.listens', 1, { timeoutMs: 2000 })).resolves.toEqual([]);
    });
  });
});
