import { Controller, Get, Injectable, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { type MessageContext, MessageHandler, RpcClient, TrackContext, UnrecoverableError } from '../../lib';
import { appModule, testLogger } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';

/**
 * W3C trace context through two hops: an HTTP request (in a SERVER span, as an HTTP
 * instrumentation would start it) sends to queue A, whose handler sends to queue B. The handler
 * of B runs in the trace the HTTP request carried, each span the child of the one before it.
 */
describe('tracing with @opentelemetry/api', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const queueA = unique('trace-a');
  const queueB = unique('trace-b');
  const queueC = unique('trace-c');
  const atB = deferred<{ traceId?: string; spanId?: string; headers: Readonly<Record<string, unknown>>; tenant?: string }>();
  let broker: Broker;
  let app: INestApplication;
  let base: string;

  @Injectable()
  class Hops {
    constructor(
      private readonly rpc: RpcClient,
      private readonly track: TrackContext,
    ) {}

    @MessageHandler(queueA)
    async first(): Promise<void> {
      await this.rpc.send(queueB, { hop: 2 });
    }

    @MessageHandler(queueB)
    second(_payload: unknown, message: MessageContext): void {
      atB.resolve({
        traceId: this.track.traceId,
        spanId: trace.getActiveSpan()?.spanContext().spanId,
        headers: message.headers,
        tenant: propagation.getBaggage(context.active())?.getEntry('tenant')?.value,
      });
    }

    @MessageHandler({ queue: queueC, retry: false })
    async failing(): Promise<void> {
      await Promise.resolve();
      throw new UnrecoverableError('boom');
    }
  }

  @Controller()
  class HopController {
    constructor(private readonly rpc: RpcClient) {}

    @Get('hop')
    async hop(): Promise<{ messageId: string }> {
      return { messageId: await this.rpc.send(queueA, { hop: 1 }) };
    }
  }

  beforeAll(async () => {
    // The SDK comes first: the module looks for a registered propagator when it starts.
    provider.register();
    broker = await Broker.open();
    for (const queue of [queueA, queueB, queueC]) broker.queue(queue);
    app = await NestFactory.create(appModule({ serviceName: unique('svc-trace') }, { controllers: [HopController], providers: [Hops] }), {
      logger: testLogger(),
      abortOnError: false,
    });
    const tracer = trace.getTracer('test-http');
    app.use(
      (
        req: { headers: Record<string, string>; method: string; url: string },
        res: { on(event: 'finish', f: () => void): void },
        next: () => void,
      ) => {
        const parent = propagation.extract(ROOT_CONTEXT, req.headers);
        const span = tracer.startSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER }, parent);
        res.on('finish', () => span.end());
        context.with(trace.setSpan(parent, span), next);
      },
    );
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await app?.close();
    await provider.shutdown();
    await broker.cleanup();
  });

  const spans = () => exporter.getFinishedSpans();
  const named = (name: string, kind: SpanKind): ReadableSpan[] => spans().filter((s) => s.name === name && s.kind === kind);
  const parentOf = (span: ReadableSpan) => span.parentSpanContext?.spanId;

  it('the handler two hops away runs in the HTTP request’s trace, each span the child of the one before', async () => {
    const traceId = randomBytes(16).toString('hex');
    const callerSpanId = randomBytes(8).toString('hex');
    const response = await fetch(`${base}/hop`, { headers: { traceparent: `00-${traceId}-${callerSpanId}-01`, baggage: 'tenant=acme' } });
    expect(response.status).toBe(200);
    const { messageId } = (await response.json()) as { messageId: string };
    const b = await atB.promise;
    // A span ends with its work: a PRODUCER span on the broker's confirm, a CONSUMER span once the message is settled.
    const ended = () =>
      [`publish ${queueA}`, `publish ${queueB}`].every((name) => named(name, SpanKind.PRODUCER).length === 1) &&
      [`process ${queueA}`, `process ${queueB}`].every((name) => named(name, SpanKind.CONSUMER).length === 1);
    await waitFor(ended, 'the spans of both hops to end');

    const [server] = named('GET /hop', SpanKind.SERVER);
    const [publishA] = named(`publish ${queueA}`, SpanKind.PRODUCER);
    const [processA] = named(`process ${queueA}`, SpanKind.CONSUMER);
    const [publishB] = named(`publish ${queueB}`, SpanKind.PRODUCER);
    const [processB] = named(`process ${queueB}`, SpanKind.CONSUMER);
    const chain = [server, publishA, processA, publishB, processB];
    expect(chain.map((span) => span?.spanContext().traceId)).toEqual(chain.map(() => traceId));
    expect(chain.map(parentOf)).toEqual([callerSpanId, ...chain.slice(0, -1).map((span) => span.spanContext().spanId)]);

    // What the handler of B sees: the trace id, its own CONSUMER span, the headers that carried it, the baggage.
    expect(b.traceId).toBe(traceId);
    expect(b.spanId).toBe(processB.spanContext().spanId);
    expect(b.headers.traceparent).toBe(`00-${traceId}-${publishB.spanContext().spanId}-01`);
    expect(b.tenant).toBe('acme');

    expect(processA.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'nestjs_messaging.connection': 'default',
      'messaging.operation.type': 'process',
      'messaging.destination.name': queueA,
      'messaging.message.id': messageId,
    });
    expect(publishA.attributes).toMatchObject({
      'messaging.system': 'rabbitmq',
      'nestjs_messaging.connection': 'default',
      'messaging.operation.type': 'send',
      'messaging.destination.name': queueA,
      'messaging.message.id': messageId,
    });
  });

  it('records a handler’s error on its span, and a publish’s failure on the PRODUCER span', async () => {
    const rpc = app.get(RpcClient);
    await rpc.send(queueC, {});
    await waitFor(() => named(`process ${queueC}`, SpanKind.CONSUMER).length === 1, 'the failing handler’s span');
    const [failed] = named(`process ${queueC}`, SpanKind.CONSUMER);
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'boom' });
    expect(failed.events.map((event) => [event.name, event.attributes?.['exception.type']])).toEqual([['exception', 'UnrecoverableError']]);

    const nowhere = unique('trace-nowhere');
    await expect(rpc.send(nowhere, {})).rejects.toThrow(/returned unroutable/);
    const [returned] = named(`publish ${nowhere}`, SpanKind.PRODUCER);
    expect(returned.status.code).toBe(SpanStatusCode.ERROR);
  });

  it('gives a CloudEvent the traceparent extension: the trace context its PRODUCER span injected', async () => {
    const queue = broker.queue(unique('trace-ce'));
    await broker.channel.assertQueue(queue, { durable: true });
    await app.get(RpcClient).send(queue, {}, { cloudEvents: { source: '/tracing-test', type: 'com.example.traced' } });
    let sent: Awaited<ReturnType<Broker['drainQueue']>> = [];
    await waitFor(async () => (sent = await broker.drainQueue(queue)).length === 1, 'the event');
    const headers = sent[0].properties.headers ?? {};
    const [producer] = named(`publish ${queue}`, SpanKind.PRODUCER);
    expect(headers.traceparent).toBe(`00-${producer.spanContext().traceId}-${producer.spanContext().spanId}-01`);
    expect(headers['cloudEvents:traceparent']).toBe(headers.traceparent);
  });
});
