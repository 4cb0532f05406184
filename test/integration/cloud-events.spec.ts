import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { CloudEvent } from 'cloudevents';
import { InvalidArgumentError, MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';

/**
 * CloudEvents over AMQP, both ways, checked with the official `cloudevents` SDK: what we send is a
 * valid event to it, and what it builds reaches a handler with its attributes, in binary mode
 * (attributes as `cloudEvents:*` headers) and in structured mode (the event as the JSON body).
 */
describe('CloudEvents', () => {
  let broker: Broker;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => (broker = await Broker.open()));
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });
  afterAll(async () => broker.cleanup());

  it('sends a binary-mode CloudEvent the SDK accepts: id = message id, source, type, time, data', async () => {
    const queue = broker.queue(unique('ce-out'));
    await broker.channel.assertQueue(queue, { durable: true });
    app = await startApp(appModule({ serviceName: 'ce-out' }));
    const id = await app
      .get(RpcClient)
      .send(queue, { orderId: 7 }, { cloudEvents: { source: '/orders', type: 'com.example.order.shipped' } });
    let messages: Awaited<ReturnType<Broker['drainQueue']>> = [];
    await waitFor(async () => (messages = await broker.drainQueue(queue)).length === 1, 'the event in its queue');
    const [message] = messages;
    const attributes = Object.fromEntries(
      Object.entries(message.properties.headers ?? {})
        .filter(([key]) => key.startsWith('cloudEvents:'))
        .map(([key, value]) => [key.slice('cloudEvents:'.length), Buffer.isBuffer(value) ? value.toString() : value]),
    );
    const event = new CloudEvent({ ...attributes, data: JSON.parse(message.content.toString()) }, true);
    expect(event.validate()).toBe(true);
    expect(event).toMatchObject({ specversion: '1.0', id, source: '/orders', type: 'com.example.order.shipped', data: { orderId: 7 } });
    expect(Date.parse(event.time!)).not.toBeNaN();
  });

  it('takes the type from the send, and refuses an event without source or type, sending nothing', async () => {
    const queue = broker.queue(unique('ce-refused'));
    await broker.channel.assertQueue(queue, { durable: true });
    app = await startApp(appModule({ serviceName: 'ce-refused' }));
    const rpc = app.get(RpcClient);
    await rpc.send(queue, {}, { type: 'com.example.ping', cloudEvents: { source: '/pinger' } });
    await expect(rpc.send(queue, {}, { cloudEvents: { source: '/pinger' } })).rejects.toBeInstanceOf(InvalidArgumentError);
    await expect(rpc.send(queue, {}, { cloudEvents: { source: '', type: 't' } })).rejects.toThrow(/cloudEvents\.source/);
    const sent = await broker.drainQueue(queue);
    expect(sent).toHaveLength(1);
    expect(sent[0].properties.headers?.['cloudEvents:type']).toBe('com.example.ping');
  });

  it("gives a handler an SDK-built event's data and attributes, in binary and in structured mode", async () => {
    const queue = broker.queue(unique('ce-in'));
    const seen: Array<{ payload: unknown; event: MessageContext['cloudEvent'] }> = [];
    const both = deferred();
    @Injectable()
    class Listener {
      @MessageHandler(queue)
      handle(payload: unknown, context: MessageContext) {
        seen.push({ payload, event: context.cloudEvent });
        if (seen.length === 3) both.resolve();
      }
    }
    app = await startApp(appModule({ serviceName: 'ce-in' }, { providers: [Listener] }));
    const binary = new CloudEvent({ source: 'urn:svc:billing', type: 'com.example.invoice.paid', data: { invoice: 1 }, subject: 'inv-1' });
    // The AMQP binding's binary mode: attributes as `cloudEvents:` properties (older producers: `cloudEvents_`).
    const headers = (prefix: string) =>
      Object.fromEntries(
        Object.entries(binary)
          .filter(([key, value]) => key !== 'data' && value !== undefined)
          .map(([key, value]) => [`${prefix}${key}`, String(value)]),
      );
    broker.publishRaw(queue, JSON.stringify(binary.data), { contentType: 'application/json', headers: headers('cloudEvents:') });
    broker.publishRaw(queue, JSON.stringify(binary.data), { contentType: 'application/json', headers: headers('cloudEvents_') });
    const structured = new CloudEvent({ source: 'urn:svc:shop', type: 'com.example.cart.abandoned', data: { cart: 9 } });
    broker.publishRaw(queue, structured.toString(), { contentType: 'application/cloudevents+json; charset=utf-8' });
    await both.promise;
    for (const { payload, event } of seen.slice(0, 2)) {
      expect(payload).toEqual({ invoice: 1 });
      expect(event).toMatchObject({
        specversion: '1.0',
        id: binary.id,
        source: 'urn:svc:billing',
        type: 'com.example.invoice.paid',
        subject: 'inv-1',
      });
    }
    expect(seen[2].payload).toEqual({ cart: 9 });
    expect(seen[2].event).toMatchObject({
      specversion: '1.0',
      id: structured.id,
      source: 'urn:svc:shop',
      type: 'com.example.cart.abandoned',
    });
    expect(seen[2].event).not.toHaveProperty('data');
  });

  it('gives any other message no cloudEvent', async () => {
    const queue = broker.queue(unique('ce-none'));
    const got = deferred<MessageContext['cloudEvent']>();
    @Injectable()
    class Plain {
      @MessageHandler(queue)
      handle(_: unknown, context: MessageContext) {
        got.resolve(context.cloudEvent);
      }
    }
    app = await startApp(appModule({ serviceName: 'ce-none' }, { providers: [Plain] }));
    await app.get(RpcClient).send(queue, { plain: true });
    await expect(got.promise).resolves.toBeUndefined();
  });
});
