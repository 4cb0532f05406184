import { promisify } from 'node:util';
import * as zlib from 'node:zlib';
import { Injectable } from '@nestjs/common';
import { pack, unpack } from 'msgpackr';
import {
  type Codec,
  DeadLetters,
  EncodeError,
  MessageHandler,
  MessagingConfigError,
  type MessagingOptions,
  RpcClient,
  UnrecoverableError,
} from '../../lib';
import { appModule, appsUnderTest, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

const gzip = promisify(zlib.gzip);
const deflate = promisify(zlib.deflate);
const brotli = promisify(zlib.brotliCompress);
const COMPRESS = { gzip, deflate, br: brotli } as const;
const INFLATE = { gzip: zlib.gunzipSync, deflate: zlib.inflateSync, br: zlib.brotliDecompressSync } as const;
type Algorithm = keyof typeof COMPRESS;
const ALGORITHMS: Algorithm[] = ['gzip', 'deflate', 'br'];

/** The example codec of docs/payloads.md. */
const msgpack: Codec = {
  contentType: 'application/msgpack',
  encode: (value) => pack(value),
  decode: (body) => unpack(body),
};

/** A body of about `bytes` bytes once serialized as JSON. */
function bigPayload(bytes: number, label = 'x') {
  return { label, items: Array.from({ length: Math.ceil(bytes / 40) }, (_, i) => ({ i, name: `item-${i}` })) };
}

/**
 * An app with one handler on `queue` that records what it receives (or fails with `fail` while set),
 * started with `options`.
 */
function handlerApp(queue: string, options: Partial<MessagingOptions>, received: unknown[], fail?: () => Error | undefined) {
  @Injectable()
  class Receiver {
    @MessageHandler({ queue, retry: false })
    handle(payload: unknown) {
      const error = fail?.();
      if (error) throw error;
      received.push(payload);
      return payload;
    }
  }
  return appModule(options, { providers: [Receiver] });
}

describe('payloads: codecs and compression', () => {
  let broker: Broker;
  const apps = appsUnderTest();

  beforeAll(async () => {
    broker = await Broker.open();
  });
  afterAll(async () => {
    await broker.cleanup();
  });

  /** Waits until the handler got `count` messages or the queue's dead-letter queue got one. */
  async function settle(queue: string, received: unknown[], count: number): Promise<void> {
    await waitFor(async () => received.length >= count || (await broker.depth(`${queue}.dlq`)) > 0, `${count} handled or a dead letter`);
    const dead = await broker.drainQueue(`${queue}.dlq`);
    expect(dead.map((msg) => msg.properties.headers?.['x-error-message'])).toEqual([]);
  }

  it.each(ALGORITHMS)('a %s body from raw amqplib (content-encoding) reaches the handler decoded', async (algorithm) => {
    const queue = broker.queue(unique(`in-${algorithm}`));
    const received: unknown[] = [];
    await apps.start(handlerApp(queue, {}, received));
    const payload = bigPayload(4096, algorithm);
    const body = await COMPRESS[algorithm](Buffer.from(JSON.stringify(payload)));
    broker.publishRaw(queue, body, { contentType: 'application/json', contentEncoding: algorithm });
    await settle(queue, received, 1);
    expect(received).toEqual([payload]);
  });

  it.each(ALGORITHMS)(
    'with compression %s, what we send above the threshold is compressed; raw amqplib inflates it to the JSON sent',
    async (algorithm) => {
      const queue = broker.queue(unique(`out-${algorithm}`));
      await broker.channel.assertQueue(queue);
      const app = await apps.start(appModule({ compression: { algorithm, thresholdBytes: 1024 } }));
      const big = bigPayload(2048);
      const huge = bigPayload(256 * 1024); // compressed off the event loop
      const client = app.get(RpcClient);
      await client.send(queue, big);
      await client.send(queue, huge);
      await client.send(queue, { small: true });
      const [first, second, third] = await broker.drainQueue(queue);
      for (const [msg, sent] of [
        [first, big],
        [second, huge],
      ] as const) {
        expect(msg.properties).toMatchObject({ contentType: 'application/json', contentEncoding: algorithm });
        expect(msg.content.length).toBeLessThan(JSON.stringify(sent).length / 3);
        expect(JSON.parse(INFLATE[algorithm](msg.content).toString())).toEqual(sent);
      }
      expect(third.properties.contentEncoding).toBeUndefined();
      expect(JSON.parse(third.content.toString())).toEqual({ small: true });
    },
  );

  it('keeps publish order when large bodies are compressed off the event loop and small ones at once', async () => {
    const queue = broker.queue(unique('order'));
    const received: Array<{ n: number }> = [];
    const app = await apps.start(handlerApp(queue, { compression: { algorithm: 'gzip' }, prefetch: 1 }, received));
    const client = app.get(RpcClient);
    const sizes = [300_000, 100, 2_000, 200_000, 10, 70_000, 5_000, 1_000_000, 50];
    await Promise.all(sizes.map((size, n) => client.send(queue, { n, ...bigPayload(size) })));
    await settle(queue, received, sizes.length);
    expect(received.map((payload) => payload.n)).toEqual(sizes.map((_, n) => n));
  });

  it('dead-letters a 2 KB body that inflates past maxMessageBytes, and goes on with the next message', async () => {
    const queue = broker.queue(unique('too-big'));
    const received: unknown[] = [];
    await apps.start(handlerApp(queue, { maxMessageBytes: 1024 * 1024 }, received));
    const body = zlib.gzipSync(Buffer.from(JSON.stringify({ pad: ' '.repeat(2 * 1024 * 1024) })));
    expect(body.length).toBeLessThan(4096);
    broker.publishRaw(queue, body, { contentType: 'application/json', contentEncoding: 'gzip', messageId: 'bomb' });
    broker.publishRaw(queue, Buffer.from('{"next":true}'), { contentType: 'application/json' });
    await waitFor(() => received.length === 1, 'the message after the bomb');
    expect(received).toEqual([{ next: true }]);
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the dead-lettered bomb');
    const [dead] = await broker.drainQueue(`${queue}.dlq`);
    expect(dead.properties.headers).toMatchObject({ 'x-error-name': 'DecodeError' });
    expect(dead.properties.headers?.['x-error-message']).toContain('maxMessageBytes (1048576)');
    expect(dead.properties).toMatchObject({ contentEncoding: 'gzip', messageId: 'bomb' });
    expect(dead.content.equals(body)).toBe(true);
  });

  it('refuses a 1 GB brotli bomb quickly without allocating it (maxMessageBytes 1 MB)', async () => {
    const queue = broker.queue(unique('bomb'));
    const received: unknown[] = [];
    await apps.start(handlerApp(queue, { maxMessageBytes: 1024 * 1024 }, received));
    const bomb = await brotliBomb(1024);
    expect(bomb.length).toBeLessThan(2048);
    const before = process.memoryUsage();
    const started = Date.now();
    broker.publishRaw(queue, bomb, { contentEncoding: 'br' });
    broker.publishRaw(queue, Buffer.from('"after"'));
    await waitFor(() => received.length === 1, 'the message after the bomb', 5_000);
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the dead-lettered bomb', 5_000);
    const after = process.memoryUsage();
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(64 * 1024 * 1024);
    expect(after.rss - before.rss).toBeLessThan(256 * 1024 * 1024);
    const [dead] = await broker.drainQueue(`${queue}.dlq`);
    expect(dead.properties.headers).toMatchObject({ 'x-error-name': 'DecodeError' });
    expect(dead.properties.headers?.['x-error-message']).toContain('maxMessageBytes (1048576)');
  });

  it('round-trips text and bytes, compressed or not', async () => {
    const queue = broker.queue(unique('text-bytes'));
    const received: unknown[] = [];
    const app = await apps.start(handlerApp(queue, { compression: { algorithm: 'deflate', thresholdBytes: 100 } }, received));
    const client = app.get(RpcClient);
    const longText = 'héllo wörld '.repeat(100);
    const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 7));
    await client.send(queue, 'short text', { contentType: 'text/plain' });
    await client.send(queue, longText, { contentType: 'text/plain' });
    await client.send(queue, Buffer.from([1, 2, 3]));
    await client.send(queue, bytes, { contentType: 'application/octet-stream' });
    await settle(queue, received, 4);
    expect(received).toEqual(['short text', longText, Buffer.from([1, 2, 3]), bytes]);
  });

  it('uses a custom codec for a send chosen by contentType, and decodes it on receipt', async () => {
    const queue = broker.queue(unique('custom'));
    const received: unknown[] = [];
    const lines: Codec = {
      contentType: 'text/x-lines',
      encode: (value) => Buffer.from((value as string[]).join('\n')),
      decode: (body) => body.toString().split('\n'),
    };
    const app = await apps.start(handlerApp(queue, { codecs: [lines] }, received));
    await app.get(RpcClient).send(queue, ['a', 'b', 'c'], { contentType: 'text/x-lines' });
    broker.publishRaw(queue, Buffer.from('x\ny'), { contentType: 'Text/X-Lines; charset=utf-8' });
    await settle(queue, received, 2);
    expect(received).toEqual([
      ['a', 'b', 'c'],
      ['x', 'y'],
    ]);
  });

  it('fails a send whose contentType has no codec, or whose codec cannot encode the payload, with EncodeError', async () => {
    const queue = broker.queue(unique('no-codec'));
    await broker.channel.assertQueue(queue);
    const app = await apps.start(appModule({}));
    const client = app.get(RpcClient);
    await expect(client.send(queue, { a: 1 }, { contentType: 'application/x-unknown' })).rejects.toThrow(EncodeError);
    await expect(client.send(queue, { a: 1 }, { contentType: 'text/plain' })).rejects.toThrow(EncodeError);
    expect(await broker.depth(queue)).toBe(0);
  });

  it('the msgpackr codec of docs/payloads.md: dates survive, compressed too', async () => {
    const queue = broker.queue(unique('msgpack'));
    const received: unknown[] = [];
    const app = await apps.start(handlerApp(queue, { codecs: [msgpack], compression: { algorithm: 'br', thresholdBytes: 512 } }, received));
    const small = { at: new Date('2026-01-02T03:04:05.000Z'), n: 1 };
    const big = { at: new Date('2026-01-02T03:04:05.000Z'), ...bigPayload(8192) };
    await app.get(RpcClient).send(queue, small, { contentType: 'application/msgpack' });
    await app.get(RpcClient).send(queue, big, { contentType: 'application/msgpack' });
    await settle(queue, received, 2);
    expect(received).toEqual([small, big]);
    expect((received[0] as typeof small).at).toBeInstanceOf(Date);
  });

  it('a compressed message dead-lettered keeps its bytes and encoding, and decodes once replayed', async () => {
    const queue = broker.queue(unique('replay-gz'));
    const received: unknown[] = [];
    let broken = true;
    const app = await apps.start(
      handlerApp(queue, { compression: { algorithm: 'gzip' } }, received, () => (broken ? new UnrecoverableError('not yet') : undefined)),
    );
    const payload = bigPayload(8192, 'replayed');
    await app.get(RpcClient).send(queue, payload);
    await waitFor(async () => (await broker.depth(`${queue}.dlq`)) === 1, 'the dead letter');
    const channel = await broker.connection.createChannel();
    const peek = await channel.get(`${queue}.dlq`, { noAck: false });
    expect(peek && peek.properties).toMatchObject({ contentType: 'application/json', contentEncoding: 'gzip' });
    expect(JSON.parse(zlib.gunzipSync(peek ? peek.content : Buffer.alloc(0)).toString())).toEqual(payload);
    await channel.close();
    broken = false;
    await expect(app.get(DeadLetters).replay(queue)).resolves.toBe(1);
    await waitFor(() => received.length === 1, 'the replayed message');
    expect(received).toEqual([payload]);
  });

  it('a request and its reply are compressed and decoded both ways', async () => {
    const queue = broker.queue(unique('rpc-gz'));
    const received: unknown[] = [];
    const app = await apps.start(handlerApp(queue, { compression: { algorithm: 'gzip', thresholdBytes: 0 } }, received));
    const payload = bigPayload(100_000, 'echo');
    await expect(app.get(RpcClient).request(queue, payload)).resolves.toEqual(payload);
  });
});

describe('payload options are checked at startup', () => {
  const bad: Array<[string, Partial<MessagingOptions>, string]> = [
    ['an unknown algorithm', { compression: { algorithm: 'lz4' as never } }, '"compression.algorithm"'],
    ['a negative threshold', { compression: { algorithm: 'gzip', thresholdBytes: -1 } }, '"compression.thresholdBytes"'],
    ['a codec without contentType', { codecs: [{ encode: () => Buffer.alloc(0), decode: () => 1 } as never] }, '"codecs[0].contentType"'],
    ['a codec without encode', { codecs: [{ contentType: 'a/b', decode: () => 1 } as never] }, '"codecs[0].encode"'],
    ['a codec without decode', { codecs: [{ contentType: 'a/b', encode: () => Buffer.alloc(0) } as never] }, '"codecs[0].decode"'],
    ['duplicate content types', { codecs: [msgpack, { ...msgpack, contentType: 'Application/MsgPack' }] }, '"codecs[1].contentType"'],
  ];
  it.each(bad)('%s', async (_, options, named) => {
    const failure = startApp(appModule(options));
    await expect(failure).rejects.toThrow(MessagingConfigError);
    await expect(failure).rejects.toThrow(named);
  });
});

/** About `megabytes` MB of zeros in brotli: a few hundred bytes. */
async function brotliBomb(megabytes: number): Promise<Buffer> {
  const params = { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_LGWIN]: 24 };
  const encoder = zlib.createBrotliCompress({ params });
  const chunks: Buffer[] = [];
  encoder.on('data', (chunk: Buffer) => chunks.push(chunk));
  const done = new Promise((resolve) => encoder.on('end', resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < megabytes; i++) {
    if (!encoder.write(zeros)) await new Promise((resolve) => encoder.once('drain', resolve));
  }
  encoder.end();
  await done;
  return Buffer.concat(chunks);
}
