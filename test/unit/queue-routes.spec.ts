import fc from 'fast-check';
import type { MessageHandlerOptions } from '../../lib/interfaces/message-handler-options.interface';
import type { MessageContext } from '../../lib/interfaces/message-context.interface';
import { MessagingConfigError, NoHandlerError, UnrecoverableError } from '../../lib/messaging.errors';
import { resolveOptions } from '../../lib/messaging.options';
import { defineHandler, type HandlerDefinition } from '../../lib/topology/handler-definition';
import { type Invoker, needsRouting, queueDefinition, type QueueRoute, QueueRoutes } from '../../lib/consumer/queue-routes';

const MODULE = resolveOptions({ uri: 'amqp://x' });

/** A handler of queue `q` named `name`, as startup defines it from its decorator options. */
function handler(name: string, options: Partial<MessageHandlerOptions> = {}): HandlerDefinition {
  const needsExchange = options.routingKey !== undefined && options.exchange === undefined;
  return defineHandler(name, { queue: 'q', ...(needsExchange ? { exchange: 'shop' } : {}), ...options }, MODULE, 'i1');
}

/** The context a consumer passes: the message's original routing key and its AMQP `type`. */
function context(routingKey: string, type?: string): MessageContext {
  return { routingKey, raw: { properties: { type } } } as unknown as MessageContext;
}

/** Routes whose invokers return their handler's name, so a test sees which handler took a message. */
function routesOf(definitions: HandlerDefinition[]): QueueRoutes {
  const routes: QueueRoute[] = definitions.map((definition) => ({ definition, invoker: { invoke: () => definition.name } }));
  return new QueueRoutes('q', routes);
}

function takenBy(routes: QueueRoutes, routingKey: string, type?: string): string {
  try {
    return routes.invoke(undefined, context(routingKey, type)) as string;
  } catch (error) {
    if (error instanceof NoHandlerError) return 'none';
    throw error;
  }
}

function refusal(definitions: HandlerDefinition[]): string {
  try {
    queueDefinition(definitions);
  } catch (error) {
    expect(error).toBeInstanceOf(MessagingConfigError);
    return (error as Error).message;
  }
  throw new Error('the handlers were accepted');
}

describe('QueueRoutes', () => {
  describe('by routing key', () => {
    const byKey = [
      handler('placed', { routingKey: 'order.placed' }),
      handler('regional', { routingKey: ['order.*.eu', 'order.*.us'] }),
      handler('archive', { routingKey: 'archive.#' }),
    ];
    const routes = routesOf(byKey);

    it('is a valid set of handlers for one queue (no key reaches two)', () => {
      expect(() => queueDefinition(byKey)).not.toThrow();
    });

    it.each([
      ['order.placed', undefined, 'placed'],
      ['order.placed', 'anything', 'placed'], // handlers without messageType take any type
      ['order.shipped.eu', undefined, 'regional'],
      ['order.shipped.us', undefined, 'regional'],
      ['archive', undefined, 'archive'], // `#` matches no word at all
      ['archive.2024.01', undefined, 'archive'],
      ['order.shipped', undefined, 'none'],
      ['order.placed.eu.x', undefined, 'none'],
      ['', undefined, 'none'],
    ])('key %j, type %j goes to %s', (routingKey, type, expected) => {
      expect(takenBy(routes, routingKey, type)).toBe(expected);
    });
  });

  describe('by message type', () => {
    const byType = [
      handler('refunds', { messageType: 'refund' }),
      handler('audits', { messageType: 'audit' }),
      handler('euOrders', { messageType: 'order', routingKey: 'order.*.eu' }),
      handler('usOrders', { messageType: 'order', routingKey: 'order.*.us' }),
    ];
    const routes = routesOf(byType);

    it('is a valid set of handlers for one queue (no message reaches two)', () => {
      expect(() => queueDefinition(byType)).not.toThrow();
    });

    it.each([
      ['any.key', 'refund', 'refunds'],
      ['order.placed.eu', 'refund', 'refunds'], // a type-only handler takes every key of its type
      ['x', 'audit', 'audits'],
      ['order.placed.eu', 'order', 'euOrders'],
      ['order.placed.us', 'order', 'usOrders'],
      ['order.placed.jp', 'order', 'none'], // right type, no key pattern
      ['order.placed.eu', undefined, 'none'], // no type: no typed handler takes it
      ['order.placed.eu', 'Order', 'none'], // types compare exactly
      ['x', 'unknown', 'none'],
    ])('key %j, type %j goes to %s', (routingKey, type, expected) => {
      expect(takenBy(routes, routingKey, type)).toBe(expected);
    });
  });

  it('passes the payload and context to the chosen invoker and returns what it returns', async () => {
    const calls: Array<[unknown, MessageContext]> = [];
    const invoker: Invoker = { invoke: (payload, ctx) => (calls.push([payload, ctx]), Promise.resolve('done')) };
    const routes = new QueueRoutes('q', [
      { definition: handler('other', { routingKey: 'b' }), invoker: { invoke: () => 'wrong' } },
      { definition: handler('mine', { routingKey: 'a' }), invoker },
    ]);
    const ctx = context('a');
    const result = routes.invoke({ id: 1 }, ctx);
    await expect(result).resolves.toBe('done');
    expect(calls).toEqual([[{ id: 1 }, ctx]]);
  });

  it('throws NoHandlerError (unrecoverable: dead-lettered without retries) naming the queue, key, type and every handler', () => {
    const routes = routesOf([
      handler('A.a', { messageType: 'order', routingKey: ['x.*', 'y'] }),
      handler('B.b', { messageType: 'refund' }),
      handler('C.c', { routingKey: 'z' }),
    ]);
    let error: unknown;
    try {
      routes.invoke(undefined, context('z.z', 'audit'));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(NoHandlerError);
    expect(error).toBeInstanceOf(UnrecoverableError);
    expect((error as Error).message).toBe(
      'No handler of queue "q" takes a message with routing key "z.z" and type "audit" ' +
        '(handlers: type "order", keys "x.*", "y"; type "refund"; keys "z")',
    );
  });

  it('says "no type" when the message has none', () => {
    const routes = routesOf([handler('A.a', { messageType: 'order' })]);
    expect(() => routes.invoke(undefined, context('k'))).toThrow('routing key "k" and no type (handlers: type "order")');
  });

  it('stop() reaches every invoker that has a stop, and skips those that have none', () => {
    const stopped: string[] = [];
    const routes = new QueueRoutes('q', [
      { definition: handler('a', { messageType: 'a' }), invoker: { invoke: () => undefined, stop: () => stopped.push('a') } },
      { definition: handler('b', { messageType: 'b' }), invoker: { invoke: () => undefined } },
      { definition: handler('c', { messageType: 'c' }), invoker: { invoke: () => undefined, stop: () => stopped.push('c') } },
    ]);
    routes.stop();
    expect(stopped).toEqual(['a', 'c']);
  });
});

describe('needsRouting', () => {
  it.each([
    ['one handler taking every message', [handler('a')], false],
    // The broker already routes by key to a queue of its own: nothing to pick.
    ['one handler with routing keys only', [handler('a', { routingKey: 'k' })], false],
    ['one handler of one message type (others must fail)', [handler('a', { messageType: 't' })], true],
    ['two handlers sharing the queue', [handler('a', { routingKey: 'x' }), handler('b', { routingKey: 'y' })], true],
  ])('%s: %s', (_label, definitions, expected) => {
    expect(needsRouting(definitions)).toBe(expected);
  });
});

describe('queueDefinition', () => {
  it('returns the one definition of an unshared queue as it is', () => {
    const only = handler('a', { messageType: 't' });
    expect(queueDefinition([only])).toBe(only);
  });

  it('merges shared handlers: names joined, no routing of its own, bindings per exchange with each key once', () => {
    const merged = queueDefinition([
      handler('A.a', { exchange: 'shop', routingKey: ['order.placed', 'order.paid'] }),
      handler('B.b', { exchange: 'shop', routingKey: ['order.shipped', 'order.paid.late'] }),
      handler('C.c', { bindings: [{ exchange: 'billing', routingKey: 'invoice.*' }] }),
    ]);
    expect(merged).toMatchObject({ name: 'A.a, B.b, C.c', queue: 'q', messageType: undefined, routingPatterns: [] });
    expect(merged.bindings).toEqual([
      { exchange: 'shop', exchangeType: 'topic', routingKeys: ['order.placed', 'order.paid', 'order.shipped', 'order.paid.late'] },
      { exchange: 'billing', exchangeType: 'topic', routingKeys: ['invoice.*'] },
    ]);
  });

  it('binds a key two handlers share on one exchange once', () => {
    const merged = queueDefinition([
      handler('A.a', { messageType: 'x', exchange: 'shop', routingKey: 'k' }),
      handler('B.b', { messageType: 'y', exchange: 'shop', routingKey: 'k' }),
    ]);
    expect(merged.bindings).toEqual([{ exchange: 'shop', exchangeType: 'topic', routingKeys: ['k'] }]);
  });

  it.each<[string, Partial<MessageHandlerOptions>, Partial<MessageHandlerOptions>]>([
    ['the same key', { routingKey: 'order.placed' }, { routingKey: 'order.placed' }],
    ['a wildcard and a key it matches', { routingKey: 'order.*' }, { routingKey: 'order.placed' }],
    ['two wildcards a key matches both', { routingKey: 'order.#' }, { routingKey: '#.eu' }],
    ['one of several keys', { routingKey: ['a', 'b'] }, { routingKey: ['c', 'b'] }],
    ['no keys (every message) beside keys', {}, { routingKey: 'order.placed' }],
    ['two handlers for every message', {}, {}],
    ['the same type', { messageType: 't' }, { messageType: 't' }],
    ['a typed handler beside an untyped one with no keys', { messageType: 't' }, {}],
    ['a typed handler beside an untyped one with an overlapping key', { messageType: 't', routingKey: 'k.*' }, { routingKey: 'k.x' }],
    ['the same type and overlapping keys', { messageType: 't', routingKey: 'a.#' }, { messageType: 't', routingKey: 'a.b' }],
    ['the same Nest pattern', { format: 'nest-rmq', pattern: { cmd: 'sum' } }, { format: 'nest-rmq', pattern: { cmd: 'sum' } }],
    ['a Nest pattern beside a Nest handler of every pattern', { format: 'nest-rmq', pattern: 'sum' }, { format: 'nest-rmq' }],
  ])('refuses two handlers a message could reach both: %s', (_label, a, b) => {
    const message = refusal([handler('A.a', a), handler('B.b', b)]);
    expect(message).toMatch(/^Queue "q" has several handlers, but a message can reach both A\.a \(.*\) and B\.b \(.*\)/);
    expect(message).toContain('give each a "messageType", a Nest "pattern" or "routingKey" patterns no message matches twice');
  });

  it.each<[string, Partial<MessageHandlerOptions>, Partial<MessageHandlerOptions>]>([
    ['different types, no keys', { messageType: 'a' }, { messageType: 'b' }],
    ['different types, the same key', { messageType: 'a', routingKey: 'k' }, { messageType: 'b', routingKey: 'k' }],
    ['disjoint keys', { routingKey: 'order.placed' }, { routingKey: 'order.paid' }],
    ['wildcards of different lengths', { routingKey: 'order.*' }, { routingKey: 'order.*.*' }],
    ['different first words under #', { routingKey: 'order.#' }, { routingKey: 'refund.#' }],
    ['different Nest patterns', { format: 'nest-rmq', pattern: 'sum' }, { format: 'nest-rmq', pattern: { cmd: 'sum' } }],
  ])('accepts handlers no message reaches both: %s', (_label, a, b) => {
    expect(() => queueDefinition([handler('A.a', a), handler('B.b', b)])).not.toThrow();
  });

  it('names both handlers and what each takes in the refusal', () => {
    expect(refusal([handler('A.a', { messageType: 't', routingKey: 'x.*' }), handler('B.b', { routingKey: ['x.y', 'z'] })])).toContain(
      'a message can reach both A.a (type "t", keys "x.*") and B.b (keys "x.y", "z")',
    );
    expect(refusal([handler('A.a'), handler('B.b')])).toContain('a message can reach both A.a (every message) and B.b (every message)');
  });

  it.each<[string, Partial<MessageHandlerOptions>, string]>([
    ['prefetch', { prefetch: 5 }, '"prefetch"'],
    ['format', { format: 'nest-rmq' }, '"format"'],
    ['retry', { retry: { attempts: 5 } }, '"retry"'],
    ['durable', { queueOptions: { durable: false } }, '"durable"'],
    ['queue arguments', { queueOptions: { arguments: { 'x-max-length': 10 } } }, '"queueArguments"'],
    ['declare', { declare: false }, '"declare"'],
    ['idempotent', { idempotent: true }, '"idempotent"'],
  ])('refuses handlers of one queue that set %s differently', (_label, options, option) => {
    expect(refusal([handler('A.a', { messageType: 'a' }), handler('B.b', { messageType: 'b', ...options })])).toBe(
      `Queue "q" has several handlers, but A.a and B.b set ${option} differently; handlers of one queue share it`,
    );
  });

  it('accepts queue-level options set the same way on every handler', () => {
    const same: Partial<MessageHandlerOptions> = { prefetch: 5, retry: { attempts: 2, delaysMs: [10] }, idempotent: true };
    expect(() =>
      queueDefinition([handler('A.a', { messageType: 'a', ...same }), handler('B.b', { messageType: 'b', ...same })]),
    ).not.toThrow();
  });

  it('refuses a batch handler on a shared queue', () => {
    expect(refusal([handler('A.a', { messageType: 'a' }), handler('B.b', { messageType: 'b', batch: { size: 2, timeoutMs: 10 } })])).toBe(
      'Queue "q" has several handlers, but B.b is a batch handler: a batch handler has its queue to itself',
    );
  });

  it('refuses a broadcast handler on a shared queue', () => {
    const broadcast = { ...handler('B.b', { messageType: 'b' }), broadcast: true };
    expect(refusal([handler('A.a', { messageType: 'a' }), broadcast])).toContain('B.b is a broadcast handler');
  });

  it('refuses one exchange bound as two exchange types by handlers of the queue', () => {
    expect(
      refusal([
        handler('A.a', { messageType: 'a', exchange: 'shop', exchangeType: 'topic' }),
        handler('B.b', { messageType: 'b', exchange: 'shop', exchangeType: 'direct' }),
      ]),
    ).toBe('Exchange "shop" is bound as topic and as direct by handlers of one app');
  });

  it('makes routing independent of handler order whenever it accepts the handlers (property)', () => {
    // Startup refuses any set a message could reach twice, so QueueRoutes' first match is the only
    // match: the handlers in reverse order must pick the same one, for every message.
    const handlerArb = fc.record({
      messageType: fc.constantFrom(undefined, 'x', 'y'),
      routingKey: fc.array(
        fc.array(fc.constantFrom('a', 'b', '*', '#'), { minLength: 1, maxLength: 3 }).map((words) => words.join('.')),
        { maxLength: 2 },
      ),
    });
    const messageArb = fc.record({
      routingKey: fc.array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 4 }).map((words) => words.join('.')),
      type: fc.constantFrom(undefined, 'x', 'y', 'z'),
    });
    let accepted = 0;
    fc.assert(
      fc.property(fc.array(handlerArb, { minLength: 2, maxLength: 3 }), fc.array(messageArb, { maxLength: 10 }), (specs, messages) => {
        const definitions = specs.map(({ messageType, routingKey }, i) =>
          handler(`h${i}`, { messageType, ...(routingKey.length > 0 ? { routingKey } : {}) }),
        );
        try {
          queueDefinition(definitions);
        } catch (error) {
          if (error instanceof MessagingConfigError) return;
          throw error;
        }
        accepted++;
        const forward = routesOf(definitions);
        const backward = routesOf([...definitions].reverse());
        for (const { routingKey, type } of messages) expect(takenBy(backward, routingKey, type)).toBe(takenBy(forward, routingKey, type));
      }),
      { numRuns: 500 },
    );
    expect(accepted).toBeGreaterThan(20); // the property was not vacuous
  });
});
