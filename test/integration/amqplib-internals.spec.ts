/**
 * The places that reach into amqplib (its channel's frame writer, its connection's socket, the
 * wording of its handshake failures),
 * each against the real broker: the fast path must write exactly what `channel.publish` writes,
 * the fallback must work where the internal is missing, direct writes must reach the socket in the
 * same tick and keep a channel's order when its frames have to queue, and write coalescing must
 * really turn a burst of frames into few socket writes.
 */
import type { Socket } from 'node:net';
import * as amqp from 'amqplib';
import { amqplibShortcuts } from '../../lib/transport/amqp/amqplib-shortcuts';
import { coalesceWrites } from '../../lib/transport/amqp/write-coalescing';
import { writeDirectly } from '../../lib/transport/amqp/direct-writes';
import { writeMessage } from '../../lib/transport/amqp/wire';
import { handshakeRefusal } from '../../lib/transport/amqp/handshake-refusal';
import type { Outgoing } from '../../lib/publisher/publisher';
import { AMQP_URL, Broker, unique } from '../support/broker';

/** The channel as seen by code that finds no `sendMessage`/`pushConfirmCallback` on it. */
function withoutFrameWriter(channel: amqp.ConfirmChannel): amqp.ConfirmChannel {
  const hidden = new Set<PropertyKey>(['sendMessage', 'pushConfirmCallback']);
  return new Proxy(channel, {
    get(target, key) {
      if (hidden.has(key)) return undefined;
      const value = Reflect.get(target, key, target);
      return typeof value === 'function' ? value.bind(target) : value;
    },
  });
}

function confirmOf(channel: amqp.ConfirmChannel, message: Outgoing): Promise<void> {
  return new Promise((resolve, reject) =>
    writeMessage(channel, message.exchange, message.routingKey, message.content!, message.properties, (error: Error | null) =>
      error ? reject(error) : resolve(),
    ),
  );
}

describe('amqplib internals', () => {
  let broker: Broker;
  let raw: amqp.ChannelModel;
  let channel: amqp.ConfirmChannel;

  beforeAll(async () => {
    broker = await Broker.open(AMQP_URL);
    raw = await amqp.connect(AMQP_URL);
    channel = await raw.createConfirmChannel();
  });

  afterAll(async () => {
    await raw.close().catch(() => undefined);
    await broker.cleanup();
  });

  const message = (queue: string, id: string): Outgoing => ({
    exchange: '',
    routingKey: queue,
    content: Buffer.from(JSON.stringify({ id })),
    properties: {
      headers: { 'x-request-id': 'req-1', 'x-track-tenant': 'acme', n: 7 },
      messageId: id,
      correlationId: 'corr-1',
      replyTo: 'somewhere',
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      persistent: true,
      expiration: 60_000,
      priority: 3,
      timestamp: 1_700_000_000,
      type: 'order.created',
      appId: 'tests',
      mandatory: true,
    },
  });

  it('the fast path and the fallback write the same message, and both are confirmed', async () => {
    const queue = broker.queue(unique('wire'));
    await broker.channel.assertQueue(queue, { durable: true });

    await confirmOf(channel, message(queue, 'fast'));
    await confirmOf(withoutFrameWriter(channel), message(queue, 'fallback'));

    const [fast, fallback] = await broker.drainQueue(queue);
    expect(fast.properties.messageId).toBe('fast');
    expect(fallback.properties.messageId).toBe('fallback');
    const { messageId: _a, ...fastProperties } = fast.properties;
    const { messageId: _b, ...fallbackProperties } = fallback.properties;
    expect(fastProperties).toEqual(fallbackProperties);
    expect(fastProperties).toMatchObject({
      headers: { 'x-request-id': 'req-1', 'x-track-tenant': 'acme', n: 7 },
      deliveryMode: 2,
      expiration: '60000',
      priority: 3,
      type: 'order.created',
    });
  });

  it('both paths publish mandatory: an unroutable message comes back as a return', async () => {
    const nowhere = unique('nowhere');
    const returned: string[] = [];
    const onReturn = (msg: amqp.Message) => returned.push(String(msg.properties.messageId));
    channel.on('return', onReturn);
    try {
      await confirmOf(channel, message(nowhere, 'fast'));
      await confirmOf(withoutFrameWriter(channel), message(nowhere, 'fallback'));
      // a return always precedes its publish's confirm
      expect(returned).toEqual(['fast', 'fallback']);
    } finally {
      channel.off('return', onReturn);
    }
  });

  it('coalescing turns a burst of 200 publishes into a few socket writes; without it, many', async () => {
    const socketWrites = async (coalesce: boolean): Promise<number> => {
      const connection = await amqp.connect(AMQP_URL, { noDelay: true });
      try {
        if (coalesce) coalesceWrites(connection);
        const socket = (connection as unknown as { connection: { stream: Socket } }).connection.stream;
        const ch = await connection.createChannel();
        const queue = broker.queue(unique('burst'));
        await ch.assertQueue(queue, { durable: true });
        let writes = 0;
        const write = socket._write.bind(socket);
        const writev = socket._writev?.bind(socket);
        socket._write = (...args: Parameters<Socket['_write']>) => ((writes += 1), write(...args));
        if (writev) socket._writev = (...args: Parameters<NonNullable<Socket['_writev']>>) => ((writes += 1), writev(...args));
        for (let i = 0; i < 200; i++) ch.sendToQueue(queue, Buffer.from(`m${i}`));
        await new Promise<void>((resolve) => setImmediate(resolve));
        await ch.close();
        return writes;
      } finally {
        await connection.close().catch(() => undefined);
      }
    };
    const coalesced = await socketWrites(true);
    const plain = await socketWrites(false);
    expect(coalesced).toBeLessThan(plain / 4);
  });

  interface DirectChannel {
    queue: string;
    ch: amqp.ConfirmChannel;
    socket: Socket;
    /** Calls of the socket's write. */
    written: { count: number };
  }

  /**
   * Runs `body` with a connection of its own whose channel writes directly (and, with `coalesce`,
   * whose socket coalesces as the module's does), and a fresh queue. Left corked by a failed
   * check, the socket is uncorked before close(), which would wait for its close-ok forever.
   */
  const withDirectChannel = async (name: string, coalesce: boolean, body: (it: DirectChannel) => Promise<void>) => {
    const queue = broker.queue(unique(name));
    await broker.channel.assertQueue(queue, { durable: true });
    const connection = await amqp.connect(AMQP_URL, { noDelay: true });
    const socket = (connection as unknown as { connection: { stream: Socket } }).connection.stream;
    try {
      if (coalesce) coalesceWrites(connection);
      const ch = await connection.createConfirmChannel();
      writeDirectly(ch);
      const written = { count: 0 };
      const write = socket.write;
      socket.write = function (this: Socket, ...args: Parameters<Socket['write']>) {
        written.count++;
        return write.apply(this, args);
      } as Socket['write'];
      await body({ queue, ch, socket, written });
    } finally {
      while (socket.writableCorked > 0) socket.uncork();
      await connection.close().catch(() => undefined);
    }
  };

  it('direct writes: a publish and an ack reach the socket in the same tick, not a setImmediate later', () =>
    withDirectChannel('direct', true, async ({ queue, ch, written }) => {
      const before = written.count;
      ch.sendToQueue(queue, Buffer.from('one'));
      expect(written.count).toBe(before + 1);
      await ch.waitForConfirms();
      const msg = await ch.get(queue);
      if (!msg) throw new Error('the message did not arrive');
      const beforeAck = written.count;
      ch.ack(msg);
      expect(written.count).toBe(beforeAck + 1);
      await ch.close();
      expect(await broker.channel.checkQueue(queue)).toMatchObject({ messageCount: 0 });
    }));

  it("direct writes keep a channel's order when the socket is full: large and small messages, in sequence", () =>
    withDirectChannel('direct-order', true, async ({ queue, ch, socket }) => {
      const large = Buffer.alloc(256 * 1024, 'x');
      let queuedAtSomePoint = false;
      for (let i = 0; i < 60; i++) {
        ch.sendToQueue(queue, i % 3 === 0 ? large : Buffer.from(`small`), { messageId: String(i) });
        queuedAtSomePoint ||= socket.writableNeedDrain;
      }
      await ch.waitForConfirms();
      // The socket's buffer filled up (corked for the tick): later messages went through amqplib's
      // queue, behind the direct ones.
      expect(queuedAtSomePoint).toBe(true);
      const ids = (await broker.drainQueue(queue)).map((m) => Number(m.properties.messageId));
      expect(ids).toEqual(Array.from({ length: 60 }, (_, i) => i));
    }));

  it("direct writes never cut into a channel's queued frames: a publish made as the socket drains waits its turn", () =>
    // A large body goes out in several frames. When the socket refuses more in the middle of them
    // (its buffer full), the rest queue in amqplib; a publish made when the socket drains, before
    // amqplib's multiplexer has taken them, must still queue behind them: written at once, it would
    // cut into the body, and RabbitMQ closes the connection for that.
    withDirectChannel('direct-cut', false, async ({ queue, ch, socket }) => {
      // Corked, the socket holds what it is given: past its high-water mark it refuses more.
      socket.cork();
      ch.sendToQueue(queue, Buffer.alloc(1024 * 1024, 'x'), { messageId: 'large' });
      expect(socket.writableNeedDrain).toBe(true);
      // Before amqplib's own listener: the first moment the socket takes data again.
      socket.prependOnceListener('drain', () => ch.sendToQueue(queue, Buffer.from('after'), { messageId: 'after' }));
      process.nextTick(() => socket.uncork());
      await ch.waitForConfirms();
      expect((await broker.drainQueue(queue)).map((m) => m.properties.messageId)).toEqual(['large', 'after']);
    }));

  it("direct writes keep amqplib's backpressure: while the socket takes no more, publishes queue and one says so (false)", () =>
    withDirectChannel('direct-backpressure', false, async ({ queue, ch, socket }) => {
      socket.cork();
      let published = 0;
      while (ch.sendToQueue(queue, Buffer.alloc(1024, 'x'), { messageId: String(published) })) {
        published++;
        if (published > 10_000) throw new Error('the channel never said it was full');
      }
      published++;
      const drained = new Promise<void>((resolve) => ch.once('drain', () => resolve()));
      socket.uncork();
      await drained;
      await ch.waitForConfirms();
      const ids = (await broker.drainQueue(queue)).map((m) => Number(m.properties.messageId));
      expect(ids).toEqual(Array.from({ length: published }, (_, i) => i));
    }));

  it('direct writes leave a channel without the expected streams alone', () => {
    const foreign = { connection: {}, ch: 1 } as unknown as amqp.Channel;
    expect(() => writeDirectly(foreign)).not.toThrow();
    const frames = { write: () => true };
    const noSocket = { connection: { channels: [null, { buffer: frames }] }, ch: 1 } as unknown as amqp.Channel;
    const before = frames.write;
    writeDirectly(noSocket);
    expect(frames.write).toBe(before);
  });

  it("turned off (the benchmark's A/B switch), each shortcut leaves amqplib's public path in place", async () => {
    const queue = broker.queue(unique('shortcuts-off'));
    await broker.channel.assertQueue(queue, { durable: true });
    const connection = await amqp.connect(AMQP_URL);
    try {
      const ch = await connection.createConfirmChannel();
      const publish = vi.spyOn(ch, 'publish');
      await confirmOf(ch, message(queue, 'fast'));
      expect(publish).not.toHaveBeenCalled();
      const socket = (connection as unknown as { connection: { stream: Socket } }).connection.stream;
      const write = socket.write;
      amqplibShortcuts.frameWriter = false;
      amqplibShortcuts.directWrites = false;
      amqplibShortcuts.coalesceWrites = false;
      coalesceWrites(connection);
      expect(socket.write).toBe(write);
      const frames = (ch as unknown as { connection: { channels: Array<{ buffer: { write: unknown } }> }; ch: number }).connection.channels[
        (ch as unknown as { ch: number }).ch
      ].buffer;
      const queued = frames.write;
      writeDirectly(ch);
      expect(frames.write).toBe(queued);
      await confirmOf(ch, message(queue, 'public'));
      expect(publish).toHaveBeenCalledTimes(1);
      expect((await broker.drainQueue(queue)).map((m) => m.properties.messageId)).toEqual(['fast', 'public']);
    } finally {
      amqplibShortcuts.frameWriter = true;
      amqplibShortcuts.directWrites = true;
      amqplibShortcuts.coalesceWrites = true;
      await connection.close().catch(() => undefined);
    }
  });

  it('coalescing leaves a connection without the expected socket alone', () => {
    const foreign = { connection: {} } as unknown as amqp.ChannelModel;
    expect(() => coalesceWrites(foreign)).not.toThrow();
    const noCork = { connection: { stream: { write: () => true } } } as unknown as amqp.ChannelModel;
    const before = (noCork as unknown as { connection: { stream: { write: unknown } } }).connection.stream.write;
    coalesceWrites(noCork);
    expect((noCork as unknown as { connection: { stream: { write: unknown } } }).connection.stream.write).toBe(before);
  });

  it("reads amqplib's handshake failures: a refused login, a refused vhost, and neither for other failures", async () => {
    const failure = (url: string) =>
      amqp.connect(url).then(
        (connection) => connection.close().then(() => undefined),
        (error: unknown) => error,
      );
    const base = new URL(AMQP_URL);
    const wrongPassword = new URL(base);
    wrongPassword.password = 'not-the-password';
    const noVhost = new URL(base);
    noVhost.pathname = `/${unique('no-vhost')}`;
    expect(handshakeRefusal(await failure(wrongPassword.toString()))).toBe('login');
    expect(handshakeRefusal(await failure(noVhost.toString()))).toBe('vhost');
    expect(handshakeRefusal(await failure('amqp://127.0.0.1:1'))).toBeUndefined();
  });
});
