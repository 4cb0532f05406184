import { randomBytes } from 'node:crypto';
import { Inject, Injectable, type INestApplicationContext, Scope } from '@nestjs/common';
import { NestFactory, REQUEST } from '@nestjs/core';
import { MESSAGE_CONTEXT, MessageHandler, MessagingError, NoContextError, RpcClient, TrackContext, type MessageContext } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
// Internal, only to observe the condition under which Node prints MaxListenersExceededWarning.
import { ConnectionManager } from '../../lib/connection/connection-manager';

/**
 * The per-message scope against a real broker: TrackContext (x-request-id, x-track-* items,
 * causation) as handlers, singleton services and sends see it; isolation of concurrent messages;
 * request-scoped providers; hostile headers from a foreign producer; log lines; and TrackContext
 * used outside any context.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const JSON_TYPE = 'application/json';

/** Simulated work inside a handler (not a wait for an event). */
const work = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const randomMs = (max: number) => Math.floor(Math.random() * (max + 1));
const tag = () => randomBytes(6).toString('hex');

interface Snapshot {
  requestId: string | undefined;
  messageId: string | undefined;
  causationId: string | undefined;
  items: Record<string, string>;
}

/** A singleton service that reads TrackContext, as any service of the app would. */
@Injectable()
class Snooper {
  constructor(private readonly track: TrackContext) {}

  snapshot(): Snapshot {
    return {
      requestId: this.track.requestId,
      messageId: this.track.messageId,
      causationId: this.track.causationId,
      items: this.track.items(),
    };
  }

  /** What the service sees after some async work of its own. */
  async later(ms: number): Promise<{ requestId: string | undefined; n: string | undefined; echo: string | undefined }> {
    await work(ms);
    return { requestId: this.track.requestId, n: this.track.get('n'), echo: this.track.get('echo') };
  }
}

describe('per-message scope (TrackContext, request scope) against a real broker', () => {
  let broker: Broker;
  let app: INestApplicationContext;

  const q = {
    first: unique('scope-first'),
    second: unique('scope-second'),
    echo: unique('scope-echo'),
    crowd: unique('scope-crowd'),
    crowdSink: unique('scope-crowd-sink'),
    requestScoped: unique('scope-req'),
    implicit: unique('scope-implicit'),
    singleton: unique('scope-singleton'),
    hostile: unique('scope-hostile'),
    hostileSink: unique('scope-hostile-sink'),
    setter: unique('scope-setter'),
  };

  // ---- 1. propagation through a chain of handlers ------------------------------------------------
  const firstSeen: Array<{
    own: Snapshot & { tenant?: string; contextMessageId?: string };
    service: Snapshot;
    serviceAfterSet: Snapshot;
    sentId: string;
    echo: Snapshot & { contextMessageId?: string };
    afterRequest: Snapshot;
  }> = [];
  const secondSeen: Array<{ handler: Snapshot & { tenant?: string; k?: string }; service: Snapshot; context: MessageContext }> = [];

  @Injectable()
  class ChainHandlers {
    constructor(
      private readonly track: TrackContext,
      private readonly snooper: Snooper,
      private readonly rpc: RpcClient,
    ) {}

    @MessageHandler(q.first)
    async first(_payload: unknown, context: MessageContext) {
      const own = { ...this.snapshot(), tenant: this.track.get('tenant'), contextMessageId: context.messageId };
      const service = this.snooper.snapshot();
      this.track.set('k', 'v');
      const serviceAfterSet = this.snooper.snapshot();
      const sentId = await this.rpc.send(q.second, { from: 'first' });
      const echo = await this.rpc.request<Snapshot & { contextMessageId?: string }>(q.echo, {}, { timeoutMs: 5000 });
      const afterRequest = this.snapshot();
      firstSeen.push({ own, service, serviceAfterSet, sentId, echo, afterRequest });
    }

    @MessageHandler(q.second)
    second(_payload: unknown, context: MessageContext) {
      secondSeen.push({
        handler: { ...this.snapshot(), tenant: this.track.get('tenant'), k: this.track.get('k') },
        service: this.snooper.snapshot(),
        context,
      });
    }

    @MessageHandler(q.echo)
    echo(_payload: unknown, context: MessageContext) {
      return { ...this.snooper.snapshot(), contextMessageId: context.messageId };
    }

    private snapshot(): Snapshot {
      return {
        requestId: this.track.requestId,
        messageId: this.track.messageId,
        causationId: this.track.causationId,
        items: this.track.items(),
      };
    }
  }

  // ---- 2. isolation of 500 concurrent messages ---------------------------------------------------
  const crowd = { done: 0, sinkDone: 0, inFlight: 0, maxInFlight: 0, mismatches: [] as string[] };

  @Injectable()
  class CrowdHandlers {
    constructor(
      private readonly track: TrackContext,
      private readonly snooper: Snooper,
      private readonly rpc: RpcClient,
    ) {}

    @MessageHandler({ queue: q.crowd, prefetch: 100 })
    async crowd(payload: { n: number }, context: MessageContext) {
      crowd.inFlight++;
      crowd.maxInFlight = Math.max(crowd.maxInFlight, crowd.inFlight);
      try {
        const id = `crowd-req-${payload.n}`;
        const n = String(payload.n);
        this.check(payload.n, 'handler at start', id, n);
        await work(randomMs(20));
        this.check(payload.n, 'handler after a delay', id, n);
        this.track.set('echo', `echo-${n}`);
        const seen = await this.snooper.later(randomMs(20));
        if (seen.requestId !== id || seen.n !== n || seen.echo !== `echo-${n}`) {
          crowd.mismatches.push(`#${n} service saw ${JSON.stringify(seen)}`);
        }
        await work(randomMs(20));
        this.check(payload.n, 'handler after the service', id, n);
        if (this.track.get('echo') !== `echo-${n}`) crowd.mismatches.push(`#${n} handler lost its own item: ${this.track.get('echo')}`);
        if (this.track.messageId !== context.messageId)
          crowd.mismatches.push(`#${n} messageId ${this.track.messageId} != ${context.messageId}`);
        await this.rpc.send(q.crowdSink, { n: payload.n, messageId: context.messageId });
      } finally {
        crowd.inFlight--;
        crowd.done++;
      }
    }

    @MessageHandler({ queue: q.crowdSink, prefetch: 100 })
    async sink(payload: { n: number; messageId: string }) {
      const n = String(payload.n);
      await work(randomMs(10));
      this.check(payload.n, 'sink', `crowd-req-${n}`, n);
      if (this.track.get('echo') !== `echo-${n}`) crowd.mismatches.push(`#${n} sink saw echo ${this.track.get('echo')}`);
      if (this.track.causationId !== payload.messageId) {
        crowd.mismatches.push(`#${n} sink causation ${this.track.causationId} != ${payload.messageId}`);
      }
      crowd.sinkDone++;
    }

    private check(num: number, where: string, id: string, n: string) {
      const seen = { requestId: this.track.requestId, n: this.track.get('n') };
      if (seen.requestId !== id || seen.n !== n) crowd.mismatches.push(`#${num} ${where} saw ${JSON.stringify(seen)}`);
    }
  }

  // ---- 4. request-scoped providers ---------------------------------------------------------------
  const counts = { perMessageDep: 0, secondDep: 0, requestScoped: 0, implicitDep: 0, implicit: 0, singleton: 0 };

  @Injectable({ scope: Scope.REQUEST })
  class PerMessageDep {
    readonly serial = ++counts.perMessageDep;
    constructor(@Inject(MESSAGE_CONTEXT) readonly context: MessageContext) {}
  }

  /** Also depends on PerMessageDep: within one message both must get the same instance. */
  @Injectable({ scope: Scope.REQUEST })
  class SecondDep {
    constructor(readonly dep: PerMessageDep) {
      counts.secondDep++;
    }
  }

  const requestScopedSeen: Array<{
    n: number;
    instance: object;
    messageId?: string;
    injectedContextIsContext: boolean;
    injectedRequestIsContext: boolean;
    injectedContextMessageId?: string;
    depContextIsContext: boolean;
    sharedDep: boolean;
    trackRequestId?: string;
    headerRequestId: unknown;
    trackMessageId?: string;
  }> = [];

  @Injectable({ scope: Scope.REQUEST })
  class RequestScopedHandler {
    constructor(
      @Inject(MESSAGE_CONTEXT) private readonly injectedContext: MessageContext,
      @Inject(REQUEST) private readonly request: unknown,
      private readonly dep: PerMessageDep,
      private readonly second: SecondDep,
      private readonly track: TrackContext,
    ) {
      counts.requestScoped++;
    }

    @MessageHandler({ queue: q.requestScoped, prefetch: 10 })
    async handle(payload: { n: number }, context: MessageContext) {
      await work(randomMs(5));
      requestScopedSeen.push({
        n: payload.n,
        instance: this,
        messageId: context.messageId,
        injectedContextIsContext: this.injectedContext === context,
        injectedRequestIsContext: this.request === context,
        injectedContextMessageId: this.injectedContext?.messageId,
        depContextIsContext: this.dep.context === context,
        sharedDep: this.second.dep === this.dep,
        trackRequestId: this.track.requestId,
        headerRequestId: context.headers['x-request-id'],
        trackMessageId: this.track.messageId,
      });
    }
  }

  @Injectable({ scope: Scope.REQUEST })
  class ImplicitDep {
    constructor(@Inject(MESSAGE_CONTEXT) readonly context: MessageContext) {
      counts.implicitDep++;
    }
  }

  const implicitSeen: Array<{ instance: object; messageId?: string; depMessageId?: string; depContextIsContext: boolean }> = [];

  /** Default scope, but it depends on a request-scoped provider, so it is per message too. */
  @Injectable()
  class ImplicitlyScopedHandler {
    constructor(private readonly dep: ImplicitDep) {
      counts.implicit++;
    }

    @MessageHandler({ queue: q.implicit, prefetch: 10 })
    handle(_payload: unknown, context: MessageContext) {
      implicitSeen.push({
        instance: this,
        messageId: context.messageId,
        depMessageId: this.dep.context?.messageId,
        depContextIsContext: this.dep.context === context,
      });
    }
  }

  const singletonSeen: object[] = [];

  @Injectable()
  class SingletonHandler {
    constructor(readonly snooper: Snooper) {
      counts.singleton++;
    }

    @MessageHandler({ queue: q.singleton, prefetch: 10 })
    handle() {
      singletonSeen.push(this);
    }
  }

  // ---- 5. hostile headers --------------------------------------------------------------------------
  interface HostileRecord {
    first: Snapshot;
    second: Snapshot;
    protoItem?: string;
    constructorItem?: string;
    evilItem?: string;
    headersHaveObjectPrototype: boolean;
    /** What user code reading context.headers gets for an x-request-id header. */
    headerRequestId: unknown;
  }
  const hostileSeen = new Map<string, HostileRecord>();
  const hostileSinkSeen = new Map<string, { trackHeaders: number; requestId?: string }>();

  @Injectable()
  class HostileHandlers {
    constructor(
      private readonly track: TrackContext,
      private readonly snooper: Snooper,
      private readonly rpc: RpcClient,
    ) {}

    @MessageHandler({ queue: q.hostile, prefetch: 50 })
    async hostile(payload: { tag: string; forward?: boolean }, context: MessageContext) {
      const first = this.snooper.snapshot();
      await work(randomMs(10));
      const second = this.snooper.snapshot();
      if (payload.forward) await this.rpc.send(q.hostileSink, { tag: payload.tag });
      hostileSeen.set(payload.tag, {
        first,
        second,
        protoItem: this.track.get('__proto__'),
        constructorItem: this.track.get('constructor'),
        evilItem: this.track.get('evil'),
        headersHaveObjectPrototype: Object.getPrototypeOf(context.headers) === Object.prototype,
        headerRequestId: context.headers['x-request-id'],
      });
    }

    @MessageHandler({ queue: q.hostileSink, prefetch: 50 })
    sink(payload: { tag: string }, context: MessageContext) {
      hostileSinkSeen.set(payload.tag, {
        trackHeaders: Object.keys(context.headers).filter((h) => h.startsWith('x-track-')).length,
        requestId: this.track.requestId,
      });
    }
  }

  // ---- 7. TrackContext.set() with bad input inside a handler ---------------------------------------
  const setterSeen: Array<Record<string, string>> = [];

  @Injectable()
  class SetterHandler {
    constructor(private readonly track: TrackContext) {}

    @MessageHandler(q.setter)
    handle() {
      const outcome: Record<string, string> = {};
      const attempt = (label: string, fn: () => void) => {
        try {
          fn();
          outcome[label] = 'ok';
        } catch (error) {
          const e = error as Error;
          outcome[label] = `${e instanceof MessagingError ? 'MessagingError' : 'other'}:${e.name}`;
        }
      };
      attempt('space', () => this.track.set('a b', 'v'));
      attempt('empty', () => this.track.set('', 'v'));
      attempt('longKey', () => this.track.set('k'.repeat(65), 'v'));
      attempt('longValue', () => this.track.set('k', 'v'.repeat(1025)));
      attempt('nonString', () => this.track.set('k', 42 as unknown as string));
      attempt('valid', () => this.track.set('good-key_1.x:y', 'value'));
      outcome.readBack = this.track.get('good-key_1.x:y') ?? '<undefined>';
      setterSeen.push(outcome);
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    for (const name of Object.values(q)) broker.queue(name);
    app = await startApp(
      appModule(
        {},
        {
          providers: [
            Snooper,
            ChainHandlers,
            CrowdHandlers,
            PerMessageDep,
            SecondDep,
            RequestScopedHandler,
            ImplicitDep,
            ImplicitlyScopedHandler,
            SingletonHandler,
            HostileHandlers,
            SetterHandler,
          ],
        },
      ),
    );
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
  });

  it('an app with 11 handlers starts without a MaxListenersExceededWarning', () => {
    // Node prints the warning once an emitter has more listeners of one event than its maximum.
    const { consumer, publisher } = app.get(ConnectionManager);
    const over: string[] = [];
    for (const connection of [consumer, publisher]) {
      const max = connection.getMaxListeners();
      for (const event of connection.eventNames()) {
        const count = connection.listenerCount(event);
        if (max > 0 && count > max) over.push(`${connection.role} "${String(event)}": ${count} listeners, max ${max}`);
      }
    }
    expect(over).toEqual([]);
  });

  describe('propagation', () => {
    it('x-request-id and x-track-* from a foreign producer reach the handler, its services, and the next handler with causation', async () => {
      const firstMessageId = `raw-${tag()}`;
      broker.publishRaw(q.first, JSON.stringify({ hello: 1 }), {
        contentType: JSON_TYPE,
        messageId: firstMessageId,
        headers: { 'x-request-id': 'abc-123', 'x-track-tenant': 't1' },
      });
      await waitFor(() => firstSeen.length === 1 && secondSeen.length === 1, 'both handlers of the chain');
      const [a] = firstSeen;
      const [b] = secondSeen;

      // The first handler and a singleton service it calls see the incoming values.
      expect(a.own).toMatchObject({
        requestId: 'abc-123',
        tenant: 't1',
        messageId: firstMessageId,
        causationId: undefined,
        contextMessageId: firstMessageId,
      });
      expect(a.service).toEqual({ requestId: 'abc-123', messageId: firstMessageId, causationId: undefined, items: { tenant: 't1' } });
      // set() is visible at once to the services of the same message.
      expect(a.serviceAfterSet.items).toEqual({ tenant: 't1', k: 'v' });

      // The second handler (and its service): same request id, same items, causation = first message.
      expect(b.handler).toMatchObject({
        requestId: 'abc-123',
        tenant: 't1',
        k: 'v',
        causationId: firstMessageId,
        messageId: a.sentId,
      });
      expect(b.service).toEqual({
        requestId: 'abc-123',
        messageId: a.sentId,
        causationId: firstMessageId,
        items: { tenant: 't1', k: 'v' },
      });
      expect(b.context.messageId).toBe(a.sentId);
      expect(b.context.headers).toMatchObject({
        'x-request-id': 'abc-123',
        'x-track-tenant': 't1',
        'x-track-k': 'v',
        'x-causation-id': firstMessageId,
      });

      // request(): the responder sees the context too, and the caller's context survives the await.
      expect(a.echo).toMatchObject({ requestId: 'abc-123', causationId: firstMessageId, items: { tenant: 't1', k: 'v' } });
      expect(a.echo.messageId).toBe(a.echo.contextMessageId);
      expect(a.afterRequest).toEqual({
        requestId: 'abc-123',
        messageId: firstMessageId,
        causationId: undefined,
        items: { tenant: 't1', k: 'v' },
      });
    }, 15_000);

    it('500 concurrent messages with distinct ids and items: every handler, service and forwarded message sees only its own', async () => {
      const total = 500;
      for (let n = 0; n < total; n++) {
        broker.publishRaw(q.crowd, JSON.stringify({ n }), {
          contentType: JSON_TYPE,
          messageId: `crowd-msg-${n}-${tag()}`,
          headers: { 'x-request-id': `crowd-req-${n}`, 'x-track-n': String(n) },
        });
      }
      await waitFor(() => crowd.done === total && crowd.sinkDone === total, `${total} crowd messages and their forwards`, 25_000);
      expect(crowd.mismatches.slice(0, 20)).toEqual([]);
      expect(crowd.mismatches.length).toBe(0);
      // The test means something only if the messages really overlapped.
      expect(crowd.maxInFlight).toBeGreaterThan(10);
    }, 30_000);
  });

  describe('request-scoped providers', () => {
    it("a Scope.REQUEST handler class is created once per message; MESSAGE_CONTEXT and REQUEST are that message's context", async () => {
      const before = { handler: counts.requestScoped, dep: counts.perMessageDep, second: counts.secondDep };
      const client = app.get(RpcClient);
      const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => client.send(q.requestScoped, { n })));
      await waitFor(() => requestScopedSeen.length === 50, '50 request-scoped messages');

      expect(counts.requestScoped - before.handler).toBe(50);
      expect(counts.secondDep - before.second).toBe(50);
      // Shared within one message: PerMessageDep is injected twice per message but built once.
      expect(counts.perMessageDep - before.dep).toBe(50);
      expect(new Set(requestScopedSeen.map((s) => s.instance)).size).toBe(50);
      expect(requestScopedSeen.map((s) => s.messageId).sort()).toEqual([...ids].sort());
      for (const seen of requestScopedSeen) {
        expect(seen).toMatchObject({
          injectedContextIsContext: true,
          injectedRequestIsContext: true,
          injectedContextMessageId: seen.messageId,
          depContextIsContext: true,
          sharedDep: true,
          trackMessageId: seen.messageId,
          trackRequestId: seen.headerRequestId,
        });
      }
    }, 15_000);

    it("a default-scope handler with a request-scoped dependency is created per message with that message's context", async () => {
      const before = { handler: counts.implicit, dep: counts.implicitDep };
      const client = app.get(RpcClient);
      const ids = await Promise.all(Array.from({ length: 50 }, (_, n) => client.send(q.implicit, { n })));
      await waitFor(() => implicitSeen.length === 50, '50 messages to the implicitly scoped handler');

      expect(counts.implicit - before.handler).toBe(50);
      expect(counts.implicitDep - before.dep).toBe(50);
      expect(new Set(implicitSeen.map((s) => s.instance)).size).toBe(50);
      expect(implicitSeen.map((s) => s.messageId).sort()).toEqual([...ids].sort());
      for (const seen of implicitSeen) {
        expect(seen.depContextIsContext).toBe(true);
        expect(seen.depMessageId).toBe(seen.messageId);
      }
    }, 15_000);

    it('a singleton handler creates no per-message instances', async () => {
      const client = app.get(RpcClient);
      await Promise.all(Array.from({ length: 50 }, (_, n) => client.send(q.singleton, { n })));
      await waitFor(() => singletonSeen.length === 50, '50 messages to the singleton handler');
      expect(counts.singleton).toBe(1);
      expect(new Set(singletonSeen).size).toBe(1);
      expect(singletonSeen[0]).toBe(app.get(SingletonHandler));
    }, 15_000);
  });

  describe('hostile headers from a foreign producer', () => {
    /** Publishes to the hostile handler and returns the tag its record is kept under. */
    function publishHostile(headers: Record<string, unknown>, body: { forward?: boolean } = {}): string {
      const t = tag();
      broker.publishRaw(q.hostile, JSON.stringify({ tag: t, ...body }), { contentType: JSON_TYPE, messageId: `hostile-${t}`, headers });
      return t;
    }

    /** A few normal messages sent around the hostile ones; each must keep its own values. */
    function publishNormals(count: number): Array<{ tag: string; id: string; tenant: string }> {
      return Array.from({ length: count }, () => {
        const id = `normal-${tag()}`;
        const tenant = `tenant-${tag()}`;
        return { tag: publishHostile({ 'x-request-id': id, 'x-track-tenant': tenant }), id, tenant };
      });
    }

    function expectNormals(normals: Array<{ tag: string; id: string; tenant: string }>) {
      for (const normal of normals) {
        const seen = hostileSeen.get(normal.tag)!;
        for (const snapshot of [seen.first, seen.second]) {
          expect(snapshot.requestId).toBe(normal.id);
          expect(snapshot.items).toEqual({ tenant: normal.tenant });
        }
      }
    }

    const allSeen = (tags: string[]) => () => tags.every((t) => hostileSeen.has(t));

    it('a ~60 KB x-request-id is replaced by a fresh id; a ~50 KB item value is ignored', async () => {
      const before = publishNormals(5);
      const hugeId = publishHostile({ 'x-request-id': 'r'.repeat(60_000), 'x-track-tenant': 'ok' }, { forward: true });
      const hugeValue = publishHostile({ 'x-request-id': 'huge-value', 'x-track-big': 'v'.repeat(50_000), 'x-track-small': 's' });
      const after = publishNormals(5);
      await waitFor(allSeen([...before, ...after].map((n) => n.tag).concat(hugeId, hugeValue)), 'hostile and normal messages');
      await waitFor(() => hostileSinkSeen.has(hugeId), 'the forward of the huge-id message');

      const huge = hostileSeen.get(hugeId)!;
      expect(huge.first.requestId).toMatch(UUID);
      expect(huge.first.requestId!.length).toBeLessThanOrEqual(256);
      expect(huge.second.requestId).toBe(huge.first.requestId);
      expect(huge.first.items).toEqual({ tenant: 'ok' });
      // What it sends carries the fresh id, not the huge one.
      expect(hostileSinkSeen.get(hugeId)!.requestId).toBe(huge.first.requestId);

      const value = hostileSeen.get(hugeValue)!;
      expect(value.first.requestId).toBe('huge-value');
      expect(value.first.items).toEqual({ small: 's' });
      expectNormals([...before, ...after]);
    }, 15_000);

    it('invalid x-request-id values (table, array, number, empty, spaces, control characters) get distinct fresh ids', async () => {
      const variants: unknown[] = [{ nested: 'id' }, ['a', 'b'], 12345, '', 'has space', 'line\nbreak', null, true];
      const tags = variants.map((v) => publishHostile({ 'x-request-id': v }));
      const normals = publishNormals(5);
      await waitFor(allSeen([...tags, ...normals.map((n) => n.tag)]), 'messages with invalid request ids');
      const ids = tags.map((t) => hostileSeen.get(t)!.first.requestId);
      for (const id of ids) expect(id).toMatch(UUID);
      expect(new Set(ids).size).toBe(ids.length);
      expectNormals(normals);
    }, 15_000);

    it('2,000 x-track-* headers: at most 64 items (the default maxItems) are taken and forwarded', async () => {
      const headers: Record<string, unknown> = { 'x-request-id': 'many-items' };
      for (let i = 0; i < 2000; i++) headers[`x-track-i${i}`] = `v${i}`;
      const before = publishNormals(5);
      const many = publishHostile(headers, { forward: true });
      const after = publishNormals(5);
      await waitFor(allSeen([many, ...before.map((n) => n.tag), ...after.map((n) => n.tag)]), 'the many-items message');
      await waitFor(() => hostileSinkSeen.has(many), 'the forward of the many-items message');

      const seen = hostileSeen.get(many)!;
      expect(seen.first.requestId).toBe('many-items');
      expect(Object.keys(seen.first.items).length).toBe(64);
      for (const [key, value] of Object.entries(seen.first.items)) expect(value).toBe(`v${key.slice(1)}`);
      expect(hostileSinkSeen.get(many)!.trackHeaders).toBeLessThanOrEqual(64);
      expect(hostileSinkSeen.get(many)!.requestId).toBe('many-items');
      expectNormals([...before, ...after]);
    }, 15_000);

    it('non-string item values: numbers and booleans become strings; tables, arrays, null and bytes are ignored', async () => {
      const typed = publishHostile({
        'x-request-id': 'typed-values',
        'x-track-str': 'ok',
        'x-track-int': 42,
        'x-track-neg': -7,
        'x-track-float': 1.5,
        'x-track-yes': true,
        'x-track-no': false,
        'x-track-table': { a: 1, b: 'two' },
        'x-track-array': [1, 'two'],
        'x-track-null': null,
        'x-track-bytes': Buffer.from('bytes'),
      });
      const normals = publishNormals(5);
      await waitFor(allSeen([typed, ...normals.map((n) => n.tag)]), 'the typed-values message');
      expect(hostileSeen.get(typed)!.first).toMatchObject({
        requestId: 'typed-values',
        items: { str: 'ok', int: '42', neg: '-7', float: '1.5', yes: 'true', no: 'false' },
      });
      expect(Object.keys(hostileSeen.get(typed)!.first.items).sort()).toEqual(['float', 'int', 'neg', 'no', 'str', 'yes']);
      expectNormals(normals);
    }, 15_000);

    it('a top-level __proto__ header and item keys with odd characters are ignored; Object.prototype stays clean', async () => {
      // An own "__proto__" key is encoded by amqplib like any other; decoding assigns it, which
      // replaces the prototype of the decoded headers object (what a foreign producer can do).
      const withProto = (headers: Record<string, unknown>, proto: Record<string, unknown>) =>
        Object.defineProperty(headers, '__proto__', { value: proto, enumerable: true, configurable: true, writable: true });
      const headers = withProto(
        {
          'x-request-id': 'odd-keys',
          'x-track-ok': 'fine',
          'x-track-a b': 'space',
          'x-track-a/b': 'slash',
          'x-track-ü': 'umlaut',
          'x-track-': 'empty',
          'x-track-a\nb': 'newline',
          'x-track-{x}': 'braces',
          [`x-track-${'k'.repeat(65)}`]: 'long key',
        },
        { 'x-request-id': 'evil-id', 'x-track-evil': '1', polluted: 'yes' },
      );
      expect(Object.prototype.hasOwnProperty.call(headers, '__proto__')).toBe(true);
      const odd = publishHostile(headers, { forward: true });
      const protoOnly = publishHostile(withProto({}, { 'x-request-id': 'evil-only', 'x-track-evil': '2', polluted: 'yes' }));
      const normals = publishNormals(5);
      await waitFor(allSeen([odd, protoOnly, ...normals.map((n) => n.tag)]), 'the odd-keys messages');
      await waitFor(() => hostileSinkSeen.has(odd), 'the forward of the odd-keys message');

      const seen = hostileSeen.get(odd)!;
      expect(seen.first.requestId).toBe('odd-keys');
      expect(seen.first.items).toEqual({ ok: 'fine' });
      expect(seen.evilItem).toBeUndefined();

      const only = hostileSeen.get(protoOnly)!;
      expect(only.first.requestId).toMatch(UUID);
      expect(only.first.items).toEqual({});
      expect(only.evilItem).toBeUndefined();

      expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'x-track-evil')).toBe(false);
      expect(Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted')).toBe(false);
      expect(hostileSinkSeen.get(odd)!.trackHeaders).toBe(1);
      expectNormals(normals);
    }, 15_000);

    it('context.headers shows only the headers the message has: a __proto__ table cannot make absent headers appear', async () => {
      const proto = { 'x-request-id': 'evil-header', 'x-tenant': 'evil' };
      const headers = Object.defineProperty({ 'x-track-ok': 'fine' } as Record<string, unknown>, '__proto__', {
        value: proto,
        enumerable: true,
        configurable: true,
        writable: true,
      });
      const t = publishHostile(headers);
      await waitFor(allSeen([t]), 'the __proto__-table message');
      const seen = hostileSeen.get(t)!;
      // The library itself is not fooled (it reads own keys only)...
      expect(seen.first.requestId).toMatch(UUID);
      // ...and neither should be the user's code that reads context.headers.
      expect(seen.headerRequestId).toBeUndefined();
      expect(seen.headersHaveObjectPrototype).toBe(true);
    }, 15_000);

    it('item keys named __proto__, constructor and prototype are ignored', async () => {
      const headers = JSON.parse(
        '{"x-request-id":"proto-items","x-track-__proto__":"p","x-track-constructor":"c","x-track-prototype":"t","x-track-ok":"fine"}',
      ) as Record<string, unknown>;
      const t = publishHostile(headers);
      const normals = publishNormals(3);
      await waitFor(allSeen([t, ...normals.map((n) => n.tag)]), 'the proto-items message');
      const seen = hostileSeen.get(t)!;
      expect(seen.first.requestId).toBe('proto-items');
      expect(seen.protoItem).toBeUndefined();
      expect(seen.constructorItem).toBeUndefined();
      expect(Object.keys(seen.first.items)).toEqual(['ok']);
      expect(({} as Record<string, unknown>).p).toBeUndefined();
      expectNormals(normals);
    }, 15_000);
  });

  describe('TrackContext.set() validation inside a handler', () => {
    it('rejects invalid keys and values with MessagingError (not NoContextError), accepts a valid one', async () => {
      await app.get(RpcClient).send(q.setter, {});
      await waitFor(() => setterSeen.length === 1, 'the setter handler');
      expect(setterSeen[0]).toEqual({
        space: 'MessagingError:MessagingError',
        empty: 'MessagingError:MessagingError',
        longKey: 'MessagingError:MessagingError',
        longValue: 'MessagingError:MessagingError',
        nonString: 'MessagingError:MessagingError',
        valid: 'ok',
        readBack: 'value',
      });
    }, 10_000);
  });

  describe('TrackContext outside any context', () => {
    it('requestId, messageId, causationId and get() are undefined; set() throws NoContextError', () => {
      const track = app.get(TrackContext);
      expect(track.requestId).toBeUndefined();
      expect(track.messageId).toBeUndefined();
      expect(track.causationId).toBeUndefined();
      expect(track.get('tenant')).toBeUndefined();
      expect(track.items()).toEqual({});
      expect(() => track.set('tenant', 't1')).toThrow(NoContextError);
      expect(() => track.set('tenant', 't1')).toThrow(MessagingError);
      // Nothing was kept from the failed set().
      expect(track.get('tenant')).toBeUndefined();
    });

    it('set() with an invalid key or value throws a MessagingError', () => {
      const track = app.get(TrackContext);
      for (const [key, value] of [
        ['a b', 'v'],
        ['', 'v'],
        ['k'.repeat(65), 'v'],
        ['ok', 'v'.repeat(1025)],
      ] as const) {
        expect(() => track.set(key, value)).toThrow(MessagingError);
      }
    });

    it('a send from outside any context gets a fresh UUID x-request-id, a different one each time', async () => {
      const client = app.get(RpcClient);
      const before = secondSeen.length;
      await client.send(q.second, { outside: 1 });
      await client.send(q.second, { outside: 2 });
      await waitFor(() => secondSeen.length === before + 2, 'two messages sent from outside');
      const [one, two] = secondSeen.slice(before);
      for (const seen of [one, two]) {
        expect(seen.handler.requestId).toMatch(UUID);
        expect(seen.context.headers['x-request-id']).toBe(seen.handler.requestId);
        expect(seen.handler.causationId).toBeUndefined();
        expect(seen.handler.items).toEqual({});
      }
      expect(one.handler.requestId).not.toBe(two.handler.requestId);
      // The test's own code is still outside any context after all the handlers above ran.
      expect(app.get(TrackContext).requestId).toBeUndefined();
    });
  });
});

describe('per-message scope: the track option overrides the limits', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const queue = unique('scope-limits');
  const seen = new Map<string, { requestId?: string; items: Record<string, string>; setErrors: string[] }>();

  @Injectable()
  class LimitedHandler {
    constructor(private readonly track: TrackContext) {}

    @MessageHandler(queue)
    handle(payload: { tag: string }) {
      const setErrors: string[] = [];
      const requestId = this.track.requestId;
      const items = this.track.items();
      for (const [key, value] of [
        ['abcde', 'v'],
        ['ab', '123456789'],
      ]) {
        try {
          this.track.set(key, value);
          setErrors.push('ok');
        } catch (error) {
          setErrors.push(error instanceof MessagingError ? 'MessagingError' : String(error));
        }
      }
      seen.set(payload.tag, { requestId, items, setErrors });
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    app = await startApp(
      appModule({ track: { maxItems: 2, maxRequestIdLength: 16, maxKeyLength: 4, maxValueLength: 8 } }, { providers: [LimitedHandler] }),
    );
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
  });

  it('maxItems 2, maxRequestIdLength 16, maxKeyLength 4, maxValueLength 8 apply to incoming headers and to set()', async () => {
    const publish = (headers: Record<string, unknown>) => {
      const t = tag();
      broker.publishRaw(queue, JSON.stringify({ tag: t }), { contentType: JSON_TYPE, headers });
      return t;
    };
    const five = publish({
      'x-request-id': 'exactly-16-chars',
      'x-track-a': '1',
      'x-track-b': '2',
      'x-track-c': '3',
      'x-track-d': '4',
      'x-track-e': '5',
    });
    const longId = publish({
      'x-request-id': 'seventeen-chars-x',
      'x-track-long5': 'v',
      'x-track-v': '123456789',
      'x-track-ok': '12345678',
    });
    await waitFor(() => seen.has(five) && seen.has(longId), 'both messages under the tight limits');

    const a = seen.get(five)!;
    expect(a.requestId).toBe('exactly-16-chars');
    expect(Object.keys(a.items).length).toBe(2);
    expect(a.setErrors).toEqual(['MessagingError', 'MessagingError']);

    const b = seen.get(longId)!;
    expect(b.requestId).toMatch(UUID);
    expect(b.items).toEqual({ ok: '12345678' });
  }, 15_000);
});

describe('per-message scope: log lines of the module carry the request id', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  const logger = new CaptureLogger();
  const failing = unique('scope-log-fail');
  const retrying = unique('scope-log-retry');
  const freshIds: string[] = [];

  @Injectable()
  class FailingHandlers {
    constructor(private readonly track: TrackContext) {}

    @MessageHandler({ queue: failing, retry: false })
    fail(payload: { marker: string }) {
      if (payload.marker.startsWith('no-id')) freshIds.push(this.track.requestId ?? '<none>');
      throw new Error(`boom ${payload.marker}`);
    }

    @MessageHandler({ queue: retrying, retry: { attempts: 2, delaysMs: [50] } })
    retry(payload: { marker: string }) {
      throw new Error(`boom ${payload.marker}`);
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(failing, []);
    broker.queue(retrying, [50]);
    const module = appModule({}, { providers: [FailingHandlers] });
    app = await NestFactory.createApplicationContext(module, { logger, abortOnError: false });
    await app.init();
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
  });

  it("a handler that throws with retry: false logs an error line containing the message's x-request-id", async () => {
    const requestId = `log-req-${tag()}`;
    const marker = `marker-${tag()}`;
    broker.publishRaw(failing, JSON.stringify({ marker }), {
      contentType: JSON_TYPE,
      messageId: `m-${marker}`,
      headers: { 'x-request-id': requestId },
    });
    await waitFor(() => logger.find(marker, 'error').length > 0, 'the error log line of the failed message');
    const line = logger.find(marker, 'error')[0];
    expect(line.message).toContain(requestId);
    expect(line.message).toContain(`m-${marker}`);
    await waitFor(async () => (await broker.depth(`${failing}.dlq`)) === 1, 'the message in the dead-letter queue');
  }, 15_000);

  it('without an x-request-id, the log line carries the fresh id the handler saw', async () => {
    const marker = `no-id-${tag()}`;
    broker.publishRaw(failing, JSON.stringify({ marker }), { contentType: JSON_TYPE });
    await waitFor(() => logger.find(marker, 'error').length > 0, 'the error log line');
    expect(freshIds).toHaveLength(1);
    expect(freshIds[0]).toMatch(UUID);
    expect(logger.find(marker, 'error')[0].message).toContain(freshIds[0]);
  }, 15_000);

  it('the retry warning and the final error of a retried message both carry its request id', async () => {
    const requestId = `log-retry-${tag()}`;
    const marker = `marker-${tag()}`;
    broker.publishRaw(retrying, JSON.stringify({ marker }), { contentType: JSON_TYPE, headers: { 'x-request-id': requestId } });
    await waitFor(() => logger.find(marker, 'error').length > 0, 'the final error line of the retried message');
    const warnings = logger.find(marker, 'warn');
    expect(warnings.length).toBe(1);
    expect(warnings[0].message).toContain(requestId);
    expect(logger.find(marker, 'error')[0].message).toContain(requestId);
  }, 15_000);
});
