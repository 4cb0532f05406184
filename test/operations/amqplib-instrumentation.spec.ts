import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { SpanKind, trace } from '@opentelemetry/api';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AmqplibInstrumentation } from '@opentelemetry/instrumentation-amqplib';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { MessageContext } from '../../lib';
import type { Broker } from '../support/broker';

/**
 * With @opentelemetry/instrumentation-amqplib registered too, nothing is injected or spanned
 * twice: the module's publishes bypass `channel.publish` (so the context is injected once, by
 * the module, under its PRODUCER span), and its consumers are amqplib consumers (so the
 * instrumentation's CONSUMER span is the handler's, and the module adds none).
 */
// Before anything loads amqplib: the instrumentation patches it as it is required.
const exporter = new InMemorySpanExporter();
const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
provider.register();
registerInstrumentations({ instrumentations: [new AmqplibInstrumentation()], tracerProvider: provider });

describe('with @opentelemetry/instrumentation-amqplib registered', () => {
  let broker: Broker;
  let app: INestApplicationContext;
  let queue: string;
  let seen: Promise<{ headers: Readonly<Record<string, unknown>>; spanId?: string }>;
  let send: (payload: unknown) => Promise<string>;

  beforeAll(async () => {
    const lib = await import('../../lib');
    const { Broker: TestBroker, deferred, unique } = await import('../support/broker');
    const { appModule, startApp } = await import('../support/app');
    queue = unique('instrumented');
    const handled = deferred<{ headers: Readonly<Record<string, unknown>>; spanId?: string }>();
    seen = handled.promise;

    @Injectable()
    class Handler {
      @lib.MessageHandler(queue)
      handle(_payload: unknown, message: MessageContext): void {
        handled.resolve({ headers: message.headers, spanId: trace.getActiveSpan()?.spanContext().spanId });
      }
    }

    broker = await TestBroker.open();
    broker.queue(queue);
    app = await startApp(appModule({ serviceName: unique('svc-instr') }, { providers: [Handler] }));
    const rpc = app.get(lib.RpcClient);
    send = (payload) => rpc.send(queue, payload);
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
    await provider.shutdown();
  });

  it('injects the trace context once and makes one PRODUCER and one CONSUMER span per message', async () => {
    const root = trace.getTracer('test').startSpan('root');
    const traceId = root.spanContext().traceId;
    const { context } = await import('@opentelemetry/api');
    await context.with(trace.setSpan(context.active(), root), () => send({ traced: true }));
    root.end();
    const { headers, spanId } = await seen;

    const inTrace = (kind: SpanKind): ReadableSpan[] =>
      exporter.getFinishedSpans().filter((span) => span.spanContext().traceId === traceId && span.kind === kind);
    const { waitFor } = await import('../support/broker');
    await waitFor(
      () => inTrace(SpanKind.CONSUMER).length > 0 && inTrace(SpanKind.PRODUCER).length > 0,
      'the spans to end (on confirm, on ack)',
    );

    // The instrumentation is active: its CONSUMER span ("<queue> process") is there.
    const consumers = inTrace(SpanKind.CONSUMER);
    expect(consumers.map((span) => span.name)).toEqual([`${queue} process`]);
    const producers = inTrace(SpanKind.PRODUCER);
    expect(producers.map((span) => span.name)).toEqual([`publish ${queue}`]);
    const [producer] = producers;
    const [consumer] = consumers;

    expect(headers.traceparent).toBe(`00-${traceId}-${producer.spanContext().spanId}-01`);
    expect(consumer.parentSpanContext?.spanId).toBe(producer.spanContext().spanId);
    expect(producer.parentSpanContext?.spanId).toBe(root.spanContext().spanId);
    // The handler runs in the instrumentation's span, not in one of the module's own.
    expect(spanId).toBe(consumer.spanContext().spanId);
  });
});
