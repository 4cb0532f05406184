import { Injectable, type OnModuleDestroy } from '@nestjs/common';
import { MessageHandler, MessagingHealth, RpcClient, ShuttingDownError, type MessageContext } from '../../lib';
import { appModule, appsUnderTest, startApp } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('graceful shutdown', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  it('stops taking messages, finishes in-flight ones, and loses none: 200 messages, close after ~40', async () => {
    const queue = broker.queue(unique('drain'));
    const handled = new Map<number, number>();
    let running = 0;
    let startedAfterClose = 0;
    let closing = false;
    // Once 40 are handled, the handlers in flight hold on until readiness was seen down: shutdown
    // then starts with handlers running, however slowly a loaded machine sends and polls.
    const readinessSeenDown = deferred();
    @Injectable()
    class Worker {
      @MessageHandler({ queue, prefetch: 20 })
      async handle({ i }: { i: number }) {
        if (closing) startedAfterClose++;
        running++;
        await sleep(300);
        if (handled.size >= 40) await readinessSeenDown.promise;
        running--;
        handled.set(i, (handled.get(i) ?? 0) + 1);
      }
    }
    const first = await startApp(appModule({ serviceName: 'drain-1' }, { providers: [Worker] }));
    const client = first.get(RpcClient);
    await Promise.all(Array.from({ length: 200 }, (_, i) => client.send(queue, { i })));
    // Messages arrive in waves of the prefetch: between two waves nothing runs, so wait for the next
    // wave to have started (its handlers then hold on, see above) before shutting down.
    await waitFor(() => handled.size >= 40 && running > 0, '40 handled and more running', 10_000);
    closing = true;
    const health = first.get(MessagingHealth);
    const closed = first.close();
    // Readiness turns false as soon as shutdown starts, while handlers still run.
    await waitFor(() => !health.isReady(), 'readiness to turn false', 2000);
    expect(running).toBeGreaterThan(0);
    readinessSeenDown.resolve();
    await closed;
    expect(running).toBe(0);
    expect(startedAfterClose).toBe(0);
    const finished = handled.size;
    const queued = await broker.depth(queue);
    expect(finished + queued).toBe(200);

    closing = false;
    await apps.start(appModule({ serviceName: 'drain-2', prefetch: 50 }, { providers: [Worker] }));
    await waitFor(() => handled.size === 200, 'the second instance to handle the rest', 20_000);
    expect([...handled.values()].every((count) => count === 1)).toBe(true);
  }, 40_000);

  it('lets in-flight handlers use providers that close in their own onModuleDestroy', async () => {
    const queue = broker.queue(unique('db'));
    const results: string[] = [];
    const started = deferred();
    @Injectable()
    class Database implements OnModuleDestroy {
      open = true;
      query() {
        if (!this.open) throw new Error('database is closed');
        return 'row';
      }
      onModuleDestroy() {
        this.open = false;
      }
    }
    @Injectable()
    class Worker {
      constructor(private readonly db: Database) {}
      @MessageHandler({ queue, retry: false })
      async handle() {
        started.resolve();
        await sleep(200);
        results.push(this.db.query());
      }
    }
    const app = await startApp(appModule({}, { providers: [Database, Worker] }));
    await app.get(RpcClient).send(queue, {});
    await started.promise;
    await app.close();
    expect(results).toEqual(['row']);
    expect(await broker.depth(`${queue}.dlq`)).toBe(0);
  });

  it('aborts a handler slower than shutdownTimeoutMs and returns its message to the queue, on time', async () => {
    const queue = broker.queue(unique('stuck'));
    const started = deferred<MessageContext>();
    let aborted = false;
    @Injectable()
    class Worker {
      @MessageHandler({ queue, retry: false })
      async handle(_: unknown, context: MessageContext) {
        started.resolve(context);
        // A well-behaved slow handler stops when its signal aborts.
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, 5000);
          context.signal.addEventListener('abort', () => {
            aborted = true;
            clearTimeout(timer);
            resolve();
          });
        });
      }
    }
    const app = await startApp(appModule({ shutdownTimeoutMs: 500 }, { providers: [Worker] }));
    const id = await app.get(RpcClient).send(queue, { slow: true });
    await started.promise;
    const begin = Date.now();
    await app.close();
    expect(Date.now() - begin).toBeLessThan(1500);
    expect(aborted).toBe(true);
    await waitFor(async () => (await broker.depth(queue)) === 1, 'the message back in the queue', 5000);
    const [back] = await broker.drainQueue(queue);
    expect(back.properties.messageId).toBe(id);
  });

  it('awaits pending send confirms and rejects pending requests', async () => {
    const queue = broker.queue(unique('confirm'));
    const silent = broker.queue(unique('silent'));
    await broker.channel.assertQueue(queue, { durable: true });
    await broker.channel.assertQueue(silent, { durable: true });
    const app = await startApp(appModule({ rpcTimeoutMs: 10_000 }));
    const client = app.get(RpcClient);
    const sends = Array.from({ length: 500 }, (_, i) => client.send(queue, { i }));
    const request = client.request(silent, 'hello?').catch((e: unknown) => e);
    await app.close();
    await expect(Promise.all(sends)).resolves.toHaveLength(500);
    expect(await broker.depth(queue)).toBe(500);
    expect(await request).toBeInstanceOf(ShuttingDownError);
    await expect(client.send(queue, {})).rejects.toBeInstanceOf(ShuttingDownError);
  });

  it('is idempotent: close() twice at once and again later neither hangs nor throws', async () => {
    const queue = broker.queue(unique('twice'));
    @Injectable()
    class Worker {
      @MessageHandler(queue) handle() {}
    }
    const app = await startApp(appModule({}, { providers: [Worker] }));
    await Promise.all([app.close(), app.close()]);
    await app.close();
  });
});
