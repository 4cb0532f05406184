import { AsyncLocalStorage, createHook } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { memoryBrokerFor, memoryTransport } from '../../lib/transport/memory/memory.transport';
import { ChannelClosedError } from '../../lib/transport/transport.errors';
import type { Message } from '../../lib/transport/transport.interface';
import { waitFor } from '../support/broker';

/**
 * What only the memory broker has: addressing by name, and the hooks tests and the harness use
 * (stats, publishes, releaseDelayed, dropConnections). Its RabbitMQ semantics are checked against
 * RabbitMQ itself in test/integration/broker-semantics.spec.ts.
 */

const OPTIONS = { heartbeatSeconds: 10, connectionName: 'memory-broker.spec', timeoutMs: 1000 };

describe('memory broker: addressing and harness hooks', () => {
  const connect = (url: string, name = 'spec') => memoryTransport.connect(url, { ...OPTIONS, connectionName: name });

  it('shares one broker per name: memory:// with memory://, not memory://x with memory://y', async () => {
    const [a, b, x, y] = await Promise.all([connect('memory://'), connect('memory://'), connect('memory://x'), connect('memory://y')]);
    const q = `t-share-${randomBytes(4).toString('hex')}`;
    await (await a.createChannel()).assertQueue(q, { durable: true });
    expect((await (await b.createChannel()).checkQueue(q)).queue).toBe(q);
    await (await x.createChannel()).assertQueue(q, { durable: true });
    const missing = await (await y.createChannel()).checkQueue(q).catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(ChannelClosedError);
    expect((missing as ChannelClosedError).code).toBe(404);
    expect(memoryBrokerFor('memory://')).toBe(memoryBrokerFor('memory://default'));
    expect((globalThis as Record<symbol, Map<string, unknown>>)[Symbol.for('nestjs-messaging.memory-brokers')].get('x')).toBe(
      memoryBrokerFor('memory://x'),
    );
    await (await a.createChannel()).deleteQueue(q);
    await (await x.createChannel()).deleteQueue(q);
    await Promise.all([a, b, x, y].map((c) => c.close()));
  });

  it("delivers and confirms in the broker's own context, not the publisher's", async () => {
    const url = `memory://scope-${randomBytes(4).toString('hex')}`;
    const storage = new AsyncLocalStorage<string>();
    const conn = await connect(url);
    const ch = await conn.createChannel({ confirms: true });
    await ch.assertQueue('work', { durable: true });
    const seen: Array<string | undefined> = [];
    await ch.consume('work', (m) => {
      seen.push(storage.getStore());
      ch.ack(m!);
    });
    storage.run('the publisher', () => ch.publish('', 'work', Buffer.from('1'), {}, () => seen.push(storage.getStore())));
    await waitFor(() => seen.length === 2, 'the confirm and the delivery', 1000);
    expect(seen).toEqual([undefined, undefined]);
    await conn.close();
  });

  it("leaves no async resource open once loaded (what Jest's --detectOpenHandles reports)", async () => {
    const open = new Map<number, string>();
    const hook = createHook({
      init: (id, type) => void (type.startsWith('nestjs-messaging') && open.set(id, type)),
      destroy: (id) => void open.delete(id),
    }).enable();
    vi.resetModules();
    const { inBrokerScope } = await import('../../lib/transport/memory/broker-scope');
    inBrokerScope(() => undefined)();
    await new Promise((resolve) => setImmediate(resolve));
    hook.disable();
    expect([...open.values()]).toEqual([]);
  });

  it('reports ready, unacked, confirms and dispatching in stats()', async () => {
    const url = `memory://stats-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    const ch = await conn.createChannel({ confirms: true });
    await ch.assertQueue('work', { durable: true });
    await ch.assertQueue('idle', { durable: true });
    let answered = 0;
    ch.publish('', 'work', Buffer.from('1'), {}, () => answered++);
    ch.publish('', 'idle', Buffer.from('2'), {}, () => answered++);
    expect(broker.stats()).toEqual({ ready: 0, unacked: 0, confirms: 2, dispatching: true });
    await waitFor(() => answered === 2, 'both confirms', 1000);
    const got: Message[] = [];
    const consumer = await conn.createChannel();
    await consumer.consume('work', (m) => got.push(m!));
    await waitFor(() => got.length === 1, 'the first delivery', 1000);
    expect(broker.stats()).toEqual({ ready: 0, unacked: 1, confirms: 0, dispatching: false });
    ch.publish('', 'work', Buffer.from('3'), {});
    await consumer.prefetch(0);
    consumer.ack(got[0]);
    await waitFor(() => got.length === 2, 'the second delivery', 1000);
    consumer.ack(got[1]);
    expect(broker.stats()).toMatchObject({ ready: 0, unacked: 0, confirms: 0 });
    expect(broker.queues()).toEqual([
      { queue: 'work', messageCount: 0, consumerCount: 1 },
      { queue: 'idle', messageCount: 1, consumerCount: 0 },
    ]);
    expect(broker.publishes().map((p) => [p.routingKey, p.content.toString(), p.queues])).toEqual([
      ['work', '1', ['work']],
      ['idle', '2', ['idle']],
      ['work', '3', ['work']],
    ]);
    await conn.close();
  });

  it('releaseDelayed dead-letters waiting delayed messages now, and leaves consumed queues alone', async () => {
    const url = `memory://delays-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    const ch = await conn.createChannel({ confirms: true });
    await ch.assertQueue('target', { durable: true });
    const delay = { 'x-message-ttl': 60_000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'target' };
    await ch.assertQueue('delay', { durable: true, arguments: delay });
    await ch.assertQueue('consumed', { durable: true, arguments: delay });
    await ch.consume('consumed', () => undefined);
    ch.publish('', 'delay', Buffer.from('later'), {});
    ch.publish('', 'consumed', Buffer.from('held'), {});
    broker.releaseDelayed();
    const m = (await ch.get('target')) as Message;
    expect(m.content.toString()).toBe('later');
    expect(m.properties.headers!['x-death'][0]).toMatchObject({ reason: 'expired', queue: 'delay' });
    expect(await ch.get('target')).toBe(false);
    await conn.close();
  });

  it('dropConnections closes connections from the broker side: the connection with an error, its channels without', async () => {
    const url = `memory://drops-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const keep = await connect(url, 'keep');
    const drop = await connect(url, 'drop');
    const ch = await drop.createChannel();
    const connectionClosed = new Promise<Error | undefined>((resolve) => drop.once('close', resolve));
    const channelClosed = new Promise<ChannelClosedError | undefined>((resolve) => ch.once('close', resolve));
    expect(broker.connections()).toEqual([{ name: 'keep' }, { name: 'drop' }]);
    expect(broker.dropConnections((c) => c.name === 'drop')).toBe(1);
    expect(await connectionClosed).toBeInstanceOf(Error);
    expect(await channelClosed).toBeUndefined();
    expect(broker.connections()).toEqual([{ name: 'keep' }]);
    await keep.close();
  });

  it('survives thousands of channels opened and closed without keeping them', async () => {
    const url = `memory://churn-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    for (let i = 0; i < 2000; i++) {
      const ch = await conn.createChannel({ confirms: true });
      await ch.assertQueue('q', { durable: true });
      ch.publish('', 'q', Buffer.from(String(i)), {}, () => undefined);
      await ch.close();
    }
    expect([...(conn as unknown as { openChannels(): Iterable<unknown> }).openChannels()]).toEqual([]);
    expect(broker.stats()).toMatchObject({ confirms: 0, unacked: 0 });
    expect(conn.listenerCount('close')).toBe(0);
    await conn.close();
  });
});
