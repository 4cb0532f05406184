import { Injectable, type INestApplicationContext } from '@nestjs/common';
import type { Message as GetMessage } from '../../lib/transport/transport.interface';
import { MessageHandler, RpcClient, TrackContext, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { RawAmqpPublisher } from '../support/raw-amqp';
import { CaptureLogger, connectionsOf, sleep, startAppLogged, watchUnhandledRejections } from './helpers';

/**
 * RELIABILITY.md 16 (oversized or hostile headers) and 30 (payloads are data: no prototype
 * pollution; a configurable body size limit). Hostile messages are published with raw amqplib,
 * as a foreign or malicious producer would.
 */
describe('reliability: hostile input', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('hostile');
  const sink = unique('hostile-sink');
  const bodies = unique('bodies');
  const small = unique('small-bodies');
  const maxItems = 16;

  interface Seen {
    messageId: string;
    requestId: string | undefined;
    items: Record<string, string>;
    user: string | undefined;
    protoPolluted: boolean;
  }
  const seen = new Map<string, Seen>();
  const payloads = new Map<string, unknown>();
  const smallHandled: string[] = [];
  const unhandled = watchUnhandledRejections();
  const prototypeBefore = Object.getOwnPropertyNames(Object.prototype).sort();

  @Injectable()
  class Handlers {
    constructor(
      private readonly track: TrackContext,
      private readonly client: RpcClient,
    ) {}

    @MessageHandler({ queue, prefetch: 50 })
    async handle(_payload: unknown, context: MessageContext) {
      // Interleave with other messages: a context that leaked would show up here.
      await sleep(Math.random() * 20);
      seen.set(context.messageId!, {
        messageId: context.messageId!,
        requestId: this.track.requestId,
        items: this.track.items(),
        user: this.track.get('user'),
        protoPolluted: ({} as Record<string, unknown>).polluted !== undefined,
      });
      // Whatever it sends carries the (capped) context onwards.
      await this.client.send(sink, { from: context.messageId });
    }

    @MessageHandler({ queue: bodies })
    body(payload: unknown, context: MessageContext) {
      payloads.set(context.messageId!, payload);
    }

    @MessageHandler({ queue: small })
    smallBody(_payload: unknown, context: MessageContext) {
      smallHandled.push(context.messageId!);
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    broker.queue(bodies);
    broker.queue(small);
    await broker.channel.assertQueue(broker.queue(sink, []), { durable: true });
    app = await startAppLogged(
      appModule({ serviceName: unique('svc-hostile'), track: { maxItems }, maxMessageBytes: 4096 }, { providers: [Handlers] }),
      new CaptureLogger(),
    );
  });

  afterAll(async () => {
    try {
      await app?.close();
      await broker.cleanup();
    } finally {
      // Last, so that rejections during shutdown count too; it fails the file if any was seen.
      await unhandled.stop();
    }
  });

  function publish(target: string, messageId: string, headers: Record<string, unknown>, body: unknown = { ok: true }) {
    broker.channel.publish('', target, Buffer.from(JSON.stringify(body)), { contentType: 'application/json', messageId, headers });
  }

  it('16: a huge x-request-id, 10,000 x-track-* headers, non-string values and __proto__ keys: no crash, capped, and concurrent messages keep their own context', async () => {
    // The largest x-request-id amqplib can encode (its header table buffer is 64 KiB).
    publish(queue, 'huge-id', { 'x-request-id': 'r'.repeat(60_000), 'x-track-user': 'mallory' });
    // 10,000 x-track-* items, split over 4 messages so each header table fits in 64 KiB.
    for (let part = 0; part < 4; part++) {
      const headers: Record<string, unknown> = { 'x-request-id': `many-${part}` };
      for (let i = 0; i < 2500; i++) headers[`x-track-k${part}-${i}`] = 'v';
      publish(queue, `many-${part}`, headers);
    }
    publish(queue, 'types', {
      'x-request-id': 12345,
      'x-track-num': 42,
      'x-track-bool': true,
      'x-track-table': { nested: 'object' },
      'x-track-array': [1, 'two', { three: 3 }],
      'x-track-void': null,
      'x-track-bytes': Buffer.from('bytes'),
      'x-track-long': 'v'.repeat(5000),
      'x-track-bad key!': 'spaces and punctuation',
      [`x-track-${'k'.repeat(200)}`]: 'a key that is too long',
      'x-attempts': 'not a number',
      'x-redeliveries': { evil: true },
    });
    const proto: Record<string, unknown> = { 'x-request-id': 'from-proto' };
    Object.defineProperty(proto, '__proto__', { value: { polluted: 'yes', 'x-request-id': 'proto-id' }, enumerable: true });
    Object.defineProperty(proto, 'constructor', { value: { prototype: { polluted: 'yes' } }, enumerable: true });
    proto['x-track-__proto__'] = 'x';
    publish(queue, 'proto', proto);
    // Normal messages, interleaved with the hostile ones.
    const normals = 40;
    for (let i = 0; i < normals; i++) publish(queue, `normal-${i}`, { 'x-request-id': `req-${i}`, 'x-track-user': `alice-${i}` });

    const expected = [
      'huge-id',
      'many-0',
      'many-1',
      'many-2',
      'many-3',
      'types',
      'proto',
      ...Array.from({ length: normals }, (_, i) => `normal-${i}`),
    ];
    await waitFor(() => expected.every((id) => seen.has(id)), 'every message handled', 15_000);
    let onward: GetMessage[] = [];
    await waitFor(async () => {
      onward.push(...(await broker.drainQueue(sink)));
      return onward.length >= expected.length;
    }, 'every onward message');
    onward = onward.filter((m) => m.properties.headers);

    const huge = seen.get('huge-id')!;
    expect(huge.requestId).not.toContain('rrrr');
    expect(huge.requestId!.length).toBeLessThanOrEqual(256);
    expect(huge.user).toBe('mallory');

    for (let part = 0; part < 4; part++) {
      const many = seen.get(`many-${part}`)!;
      expect(many.requestId).toBe(`many-${part}`);
      expect(Object.keys(many.items).length).toBeLessThanOrEqual(maxItems);
    }

    const types = seen.get('types')!;
    expect(typeof types.requestId).toBe('string');
    expect(types.requestId).not.toBe('12345');
    for (const [key, value] of Object.entries(types.items)) {
      expect(typeof value).toBe('string');
      expect(value.length).toBeLessThanOrEqual(1024);
      expect(key).toMatch(/^[A-Za-z0-9_.:-]{1,64}$/);
    }
    for (const key of ['table', 'array', 'void', 'bytes', 'long', 'bad key!']) expect(types.items).not.toHaveProperty([key]);

    const proto2 = seen.get('proto')!;
    expect(proto2.requestId).toBe('from-proto');
    expect(proto2.protoPolluted).toBe(false);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();

    for (let i = 0; i < normals; i++) {
      const normal = seen.get(`normal-${i}`)!;
      expect(normal.requestId).toBe(`req-${i}`);
      expect(normal.items).toEqual({ user: `alice-${i}` });
    }

    // What the hostile contexts sent on is capped as well.
    const trackHeaders = onward.map((m) => Object.keys(m.properties.headers!).filter((h) => h.startsWith('x-track-')).length);
    const idLengths = onward.map((m) => String(m.properties.headers!['x-request-id']).length);
    console.log(
      `[reliability 16] hostile headers: ${expected.length} messages handled, onward messages ${onward.length}, ` +
        `max x-track-* sent on ${Math.max(...trackHeaders)}, longest x-request-id sent on ${Math.max(...idLengths)}, ` +
        `items kept from 2,500-header messages ${[0, 1, 2, 3].map((p) => Object.keys(seen.get(`many-${p}`)!.items).length).join('/')}, ` +
        `items kept from the typed message ${JSON.stringify(types.items)}`,
    );
    expect(Math.max(...trackHeaders)).toBeLessThanOrEqual(maxItems);
    expect(Math.max(...idLengths)).toBeLessThanOrEqual(256);
    expect(await unhandled.settled()).toEqual([]);
  }, 30_000);

  it('16: a failing message whose headers fill the 64 KiB table is retried and dead-lettered, and the publisher keeps working', async () => {
    // Its own app: if this breaks the publisher, the other tests must not inherit it.
    const failing = broker.queue(unique('hostile-fails'), [50]);
    const other = broker.queue(unique('hostile-other'));
    const failingCalls: string[] = [];
    const otherHandled: string[] = [];
    @Injectable()
    class Failing {
      @MessageHandler({ queue: failing, retry: { attempts: 2, delaysMs: [50] } })
      fails(_payload: unknown, context: MessageContext) {
        failingCalls.push(context.messageId!);
        throw new Error('this handler fails');
      }
      @MessageHandler({ queue: other })
      ok(_payload: unknown, context: MessageContext) {
        otherHandled.push(context.messageId!);
      }
    }
    const logger = new CaptureLogger();
    const own = await startAppLogged(
      appModule({ serviceName: unique('svc-fulltable'), publishTimeoutMs: 3000 }, { providers: [Failing] }),
      logger,
    );
    try {
      // 65,500 bytes of x-request-id: the table encodes (65,522 of 65,536 bytes), but a copy with
      // more headers (x-attempts, x-error-*) no longer fits amqplib's header buffer.
      publish(failing, 'full-table', { 'x-request-id': 'r'.repeat(65_500) });
      await waitFor(() => failingCalls.length >= 2, 'the two tries');
      await sleep(300); // the dead-letter copy is attempted now
      const client = own.get(RpcClient);
      const started = Date.now();
      let after: unknown;
      try {
        await client.send(other, { after: 'full-table' }, { messageId: 'after-full-table' });
      } catch (error) {
        after = error;
      }
      const afterMs = Date.now() - started;
      await sleep(500);
      const dead = await broker.drainQueue(`${failing}.dlq`);
      const figures = {
        handlerCalls: failingCalls.length,
        deadLettered: dead.length,
        readyInQueue: await broker.depth(failing),
        inRetryQueue: await broker.depth(`${failing}.retry.50ms`),
        sendAfter: after === undefined ? `confirmed in ${afterMs} ms` : `${String(after)} after ${afterMs} ms`,
        logs: logger.lines.filter((l) => l.level !== 'log').map((l) => l.text.slice(0, 200)),
      };
      console.log(`[reliability 16] failing message with a full 64 KiB header table: ${JSON.stringify(figures)}`);
      expect(after).toBeUndefined();
      expect(afterMs).toBeLessThan(2000);
      // Nothing lost: it went through its tries and sits in the dead-letter queue.
      expect(failingCalls).toEqual(['full-table', 'full-table']);
      expect(dead.map((m) => m.properties.messageId)).toEqual(['full-table']);
    } finally {
      await own.close();
    }
  }, 30_000);

  it('16: a header table over 64 KiB (108 KiB, written as raw AMQP frames) is handled or dead-lettered; no reconnect, neighbours keep their own context', async () => {
    // amqplib cannot encode such a table, but AMQP allows it and RabbitMQ takes it as long as the
    // content header fits in one frame (frame_max, 131,072 bytes by default): a foreign producer can send it.
    const serviceName = unique('svc-bigtable');
    const accepting = broker.queue(unique('bigtable-ok'));
    const failing = broker.queue(unique('bigtable-fails'), [50]);
    const contexts = new Map<string, { requestId?: string; items: Record<string, string> }>();
    const failingCalls: string[] = [];
    @Injectable()
    class BigTables {
      constructor(private readonly track: TrackContext) {}
      @MessageHandler({ queue: accepting, prefetch: 20 })
      async accept(_payload: unknown, context: MessageContext) {
        await sleep(Math.random() * 10);
        contexts.set(context.messageId!, { requestId: this.track.requestId, items: this.track.items() });
      }
      @MessageHandler({ queue: failing, retry: { attempts: 2, delaysMs: [50] } })
      fails(_payload: unknown, context: MessageContext) {
        failingCalls.push(context.messageId!);
        throw new Error('fails on every try');
      }
    }
    const logger = new CaptureLogger();
    const own = await startAppLogged(appModule({ serviceName, track: { maxItems } }, { providers: [BigTables] }), logger);
    const raw = await RawAmqpPublisher.open();
    try {
      const connectionsBefore = (await connectionsOf(serviceName)).map((c) => c.pid).sort();
      const headers: Record<string, string> = { 'x-request-id': 'r'.repeat(70_000), 'x-track-user': 'mallory' };
      for (let i = 0; i < 2000; i++) headers[`x-track-k${i}`] = 'v';
      const headerFrame = RawAmqpPublisher.headerFrameSize(headers, 'application/json', 'big-ok');
      expect(headerFrame).toBeGreaterThan(100 * 1024);
      const body = Buffer.from(JSON.stringify({ ok: true }));
      const normals = 20;
      const verdicts: string[] = [];
      for (let i = 0; i < normals; i++) {
        if (i === 5)
          verdicts.push(await raw.publish('', accepting, body, { contentType: 'application/json', messageId: 'big-ok', headers }));
        if (i === 10)
          verdicts.push(await raw.publish('', failing, body, { contentType: 'application/json', messageId: 'big-fails', headers }));
        publish(accepting, `normal-${i}`, { 'x-request-id': `req-${i}`, 'x-track-user': `alice-${i}` });
      }
      expect(verdicts).toEqual(['ack', 'ack']); // RabbitMQ took both

      const expected = ['big-ok', ...Array.from({ length: normals }, (_, i) => `normal-${i}`)];
      await waitFor(() => expected.every((id) => contexts.has(id)), 'the oversized message and its neighbours handled', 15_000);
      let dead: GetMessage[] = [];
      await waitFor(
        async () => {
          dead.push(...(await broker.drainQueue(`${failing}.dlq`)));
          return dead.length >= 1;
        },
        'the failing oversized message in the dead-letter queue',
        15_000,
      );
      await sleep(200);
      dead = [...dead, ...(await broker.drainQueue(`${failing}.dlq`))];
      const after = await own.get(RpcClient).send(accepting, { after: true }, { messageId: 'after-big' });
      await waitFor(() => contexts.has(after), 'a message sent after the oversized ones');

      const big = contexts.get('big-ok')!;
      const figures = {
        headerFrameBytes: headerFrame,
        handled: contexts.size,
        bigContext: { requestIdLength: big.requestId?.length, items: Object.keys(big.items).length, user: big.items.user },
        failing: {
          calls: failingCalls.length,
          deadLettered: dead.length,
          headersDropped: dead[0]?.properties.headers?.['x-headers-dropped'],
        },
        connectionLosses: logger.matching(/was lost/).length,
      };
      console.log(`[reliability 16] header table over 64 KiB from a raw producer: ${JSON.stringify(figures)}`);
      expect(big.requestId).not.toContain('rrrr');
      expect(big.requestId!.length).toBeLessThanOrEqual(256);
      expect(Object.keys(big.items).length).toBeLessThanOrEqual(maxItems);
      for (let i = 0; i < normals; i++) {
        expect(contexts.get(`normal-${i}`)).toEqual({ requestId: `req-${i}`, items: { user: `alice-${i}` } });
      }
      expect(failingCalls).toEqual(['big-fails', 'big-fails']);
      expect(dead.map((m) => m.properties.messageId)).toEqual(['big-fails']);
      expect(dead[0].properties.headers?.['x-error-name']).toBe('Error');
      expect(figures.connectionLosses).toBe(0);
      expect((await connectionsOf(serviceName)).map((c) => c.pid).sort()).toEqual(connectionsBefore);
      expect(await unhandled.settled()).toEqual([]);
    } finally {
      await raw.close();
      await own.close();
    }
  }, 60_000);

  it('30: __proto__ and constructor.prototype in JSON bodies do not pollute; the payload has no such keys', async () => {
    const raw = [
      '{"__proto__": {"polluted": "yes"}, "a": 1}',
      '{"constructor": {"prototype": {"polluted": "yes"}}, "b": 2}',
      '{"nested": {"__proto__": {"polluted": "yes"}, "deeper": [{"__proto__": {"isAdmin": true}}]}, "c": 3}',
      '{"constructor": "a plain string is just data", "d": 4}',
    ];
    raw.forEach((body, i) => broker.publishRaw(bodies, body, { contentType: 'application/json', messageId: `body-${i}` }));
    await waitFor(() => payloads.size === raw.length, 'every body handled');
    const merge = (target: Record<string, unknown>, source: Record<string, unknown>): Record<string, unknown> => {
      // The kind of naive deep merge user code does with payloads.
      for (const key of Object.keys(source)) {
        const value = source[key];
        if (value && typeof value === 'object' && !Array.isArray(value)) {
          if (!target[key] || typeof target[key] !== 'object') target[key] = {};
          merge(target[key] as Record<string, unknown>, value as Record<string, unknown>);
        } else target[key] = value;
      }
      return target;
    };
    for (const payload of payloads.values()) merge({}, payload as Record<string, unknown>);

    const p0 = payloads.get('body-0') as Record<string, unknown>;
    const p1 = payloads.get('body-1') as Record<string, unknown>;
    const p2 = payloads.get('body-2') as { nested: Record<string, unknown> & { deeper: Array<Record<string, unknown>> } };
    const p3 = payloads.get('body-3') as Record<string, unknown>;
    console.log(`[reliability 30] decoded bodies: ${JSON.stringify([...payloads.values()])}`);
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(prototypeBefore);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    expect(Object.prototype.hasOwnProperty.call(p0, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(p0)).toBe(Object.prototype);
    expect(p0).toEqual({ a: 1 });
    expect(Object.prototype.hasOwnProperty.call(p1, 'constructor')).toBe(false);
    expect(p1).toEqual({ b: 2 });
    expect(Object.prototype.hasOwnProperty.call(p2.nested, '__proto__')).toBe(false);
    expect(Object.prototype.hasOwnProperty.call(p2.nested.deeper[0], '__proto__')).toBe(false);
    expect((p2.nested as Record<string, unknown>).polluted).toBeUndefined();
    expect(p3).toEqual({ constructor: 'a plain string is just data', d: 4 });
  });

  it('30: maxMessageBytes dead-letters a larger body; a body within the limit is handled', async () => {
    broker.publishRaw(small, JSON.stringify({ blob: 'x'.repeat(8000) }), { contentType: 'application/json', messageId: 'too-big' });
    broker.publishRaw(small, JSON.stringify({ blob: 'x'.repeat(1000) }), { contentType: 'application/json', messageId: 'fits' });
    await waitFor(() => smallHandled.includes('fits'), 'the body within the limit');
    let dead: GetMessage[] = [];
    await waitFor(async () => {
      dead.push(...(await broker.drainQueue(`${small}.dlq`)));
      return dead.length >= 1;
    }, 'the oversized body in the dead-letter queue');
    await sleep(100);
    dead = [...dead, ...(await broker.drainQueue(`${small}.dlq`))];
    console.log(
      `[reliability 30] maxMessageBytes 4096: handled ${JSON.stringify(smallHandled)}, dead-lettered ${dead.map((m) => `${m.properties.messageId} (${m.properties.headers?.['x-error-message']})`).join(', ')}`,
    );
    expect(smallHandled).toEqual(['fits']);
    expect(dead.map((m) => m.properties.messageId)).toEqual(['too-big']);
    expect(dead[0].properties.headers?.['x-error-name']).toBe('DecodeError');
    expect(String(dead[0].properties.headers?.['x-error-message'])).toMatch(/maxMessageBytes/);
  });
});
