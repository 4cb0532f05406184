import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessagingConfigError, type MessageHandlerOptions } from '../../lib';
import { appInfo } from '../../lib/asyncapi/app-info';
import { resolveOptions } from '../../lib/messaging.options';
import { defineHandler } from '../../lib/topology/handler-definition';

class PlaceOrder {}

function refusal(asyncApi: unknown): string {
  try {
    resolveOptions({ uri: 'amqp://x', asyncApi: asyncApi as never });
  } catch (error) {
    expect(error).toBeInstanceOf(MessagingConfigError);
    return (error as Error).message;
  }
  throw new Error('the option was accepted');
}

describe('the asyncApi option', () => {
  it('takes info, a server and what the app sends, with names as the code has them', () => {
    const publishes = [
      { exchange: 'orders', exchangeType: 'fanout' as const, routingKey: 'order.placed', payload: PlaceOrder, name: 'OrderPlaced' },
      { queue: 'billing', payload: { type: 'object' }, summary: 'Bills an order', description: 'Longer', messageType: 'bill' },
    ];
    const options = resolveOptions({
      uri: 'memory://',
      queues: { billing: 'prod.billing' },
      asyncApi: { info: { title: 'Shop', version: '2.1.0', description: 'Orders' }, server: 'amqps://u:p@broker/shop', publishes },
    });
    expect(options.asyncApi).toEqual({
      info: { title: 'Shop', version: '2.1.0', description: 'Orders' },
      server: 'amqps://u:p@broker/shop',
      publishes,
    });
    expect(resolveOptions({ uri: 'memory://' }).asyncApi).toEqual({ publishes: [] });
  });

  it.each<[unknown, string]>([
    ['yes', 'MessagingModule option "asyncApi" must be an object { info?, server?, publishes? } (got "yes")'],
    [{ title: 'x' }, 'MessagingModule option "asyncApi" has no "title" (it takes info, server, publishes)'],
    [{ info: 'Shop' }, 'MessagingModule option "asyncApi.info" must be an object { title?, version?, description? } (got "Shop")'],
    [{ info: { name: 'Shop' } }, 'MessagingModule option "asyncApi.info" has no "name" (it takes title, version, description)'],
    [{ info: { version: 2 } }, 'MessagingModule option "asyncApi.info.version" must be a non-empty string (got 2)'],
    [
      { server: 'http://admin:hunter2@broker' },
      'MessagingModule option "asyncApi.server" must be the amqp:// or amqps:// URL of the broker the document names for this connection (got "http://admin:***@broker")',
    ],
    [
      { publishes: {} },
      'MessagingModule option "asyncApi.publishes" must be an array of { exchange | queue, routingKey?, payload?, name?, summary? }',
    ],
    [[], 'MessagingModule option "asyncApi" must be an object'],
    [
      { publishes: [null] },
      'MessagingModule option "asyncApi.publishes[0]" must be an object { exchange | queue, routingKey?, payload?, name?, summary? } (got null)',
    ],
    [
      { publishes: [{ routingKey: 'a' }] },
      'MessagingModule option "asyncApi.publishes[0]" must name an "exchange" (what publish() sends to) or a "queue" (what send() and request() send to)',
    ],
    [
      { publishes: [{ queue: 'a' }, { exchange: 'e', queue: 'a' }] },
      'MessagingModule option "asyncApi.publishes[1]" names both an "exchange" and a "queue": describe each in an entry of its own',
    ],
    [
      { publishes: [{ queue: 'a', topic: 'x' }] },
      'MessagingModule option "asyncApi.publishes[0]" has no "topic" (it takes exchange, exchangeType, queue,',
    ],
    [
      { publishes: [{ queue: '' }] },
      'MessagingModule option "asyncApi.publishes[0].queue" must be a non-empty name of at most 255 characters (got "")',
    ],
    [
      { publishes: [{ queue: 'a', routingKey: 'k' }] },
      'MessagingModule option "asyncApi.publishes[0].routingKey" needs an "exchange": a send to a queue is routed by its name',
    ],
    [
      { publishes: [{ exchange: 'e', routingKey: 1 }] },
      'MessagingModule option "asyncApi.publishes[0].routingKey" must be a string (got 1)',
    ],
    [
      { publishes: [{ exchange: 'e', exchangeType: 'x-delayed' }] },
      `MessagingModule option "asyncApi.publishes[0].exchangeType" must be 'topic', 'direct', 'fanout', 'headers' (got "x-delayed")`,
    ],
    [
      { publishes: [{ queue: 'a', payload: 'PlaceOrder' }] },
      'MessagingModule option "asyncApi.publishes[0].payload" must be a class or a JSON Schema object (got "PlaceOrder")',
    ],
    [
      { publishes: [{ queue: 'a', name: 'Place order' }] },
      'MessagingModule option "asyncApi.publishes[0].name" must be a name of 1 to 128 letters, digits, ".", "_" or "-" (got "Place order")',
    ],
    [
      { publishes: [{ queue: 'a', summary: '' }] },
      'MessagingModule option "asyncApi.publishes[0].summary" must be a non-empty string (got "")',
    ],
  ])('refuses %j, naming the option and what it takes', (asyncApi, message) => {
    expect(refusal(asyncApi)).toContain(message);
  });
});

describe("the document's info", () => {
  it("comes from asyncApi.info, else the app's package.json, else placeholders", () => {
    const dir = mkdtempSync(join(tmpdir(), 'asyncapi-info-'));
    try {
      expect(appInfo(undefined, dir)).toEqual({ title: 'nestjs-messaging app', version: '0.0.0' });
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'shop', version: '1.4.0', description: 'The shop' }));
      expect(appInfo(undefined, dir)).toEqual({ title: 'shop', version: '1.4.0', description: 'The shop' });
      expect(appInfo({ title: 'Shop API' }, dir)).toEqual({ title: 'Shop API', version: '1.4.0', description: 'The shop' });
      writeFileSync(join(dir, 'package.json'), '{ not json');
      expect(appInfo({ version: '2' }, dir)).toEqual({ title: 'nestjs-messaging app', version: '2' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the schema and reply options of @MessageHandler', () => {
  const module = resolveOptions({ uri: 'amqp://x' });
  const define = (options: MessageHandlerOptions) => defineHandler('Orders.place', { queue: 'q', ...options }, module, 'i1');

  it('takes a JSON Schema, and true, false, a class or a JSON Schema as the reply', () => {
    for (const reply of [true, false, PlaceOrder, { type: 'string' }])
      expect(() => define({ schema: { type: 'object' }, reply })).not.toThrow();
  });

  it.each<[MessageHandlerOptions, string]>([
    [
      { schema: PlaceOrder as never },
      '@MessageHandler on Orders.place: "schema" must be a JSON Schema object; a class is described from the type of the @Payload() parameter (got class PlaceOrder)',
    ],
    [{ schema: [] as never }, '@MessageHandler on Orders.place: "schema" must be a JSON Schema object (got [])'],
    [
      { reply: 'Quote' as never },
      '@MessageHandler on Orders.place: "reply" must be true, false, a class or a JSON Schema object (got "Quote")',
    ],
  ])('refuses %j at startup', (options, message) => {
    expect(() => define(options)).toThrow(MessagingConfigError);
    expect(() => define(options)).toThrow(message);
  });
});
