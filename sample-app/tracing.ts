import type { INestApplication } from '@nestjs/common';

/**
 * TRACING=console: an OpenTelemetry SDK that prints every span to the console. It must be
 * registered before the app is created: the messaging module looks for it when it starts. The
 * SDK packages are loaded only then.
 */
export async function startTracing(): Promise<void> {
  const { NodeTracerProvider } = await import('@opentelemetry/sdk-trace-node');
  const { ConsoleSpanExporter, SimpleSpanProcessor } = await import('@opentelemetry/sdk-trace-base');
  new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] }).register();
}

/**
 * A SERVER span per HTTP request, in the trace its `traceparent` header names (what
 * @opentelemetry/instrumentation-http does, in a few lines): the messages sent while handling it
 * join that trace.
 */
export async function traceHttpRequests(app: INestApplication): Promise<void> {
  const { context, propagation, ROOT_CONTEXT, SpanKind, trace } = await import('@opentelemetry/api');
  const tracer = trace.getTracer('sample-http');
  app.use(
    (
      req: { method: string; url: string; headers: Record<string, string> },
      res: { on(event: 'finish', f: () => void): void },
      next: () => void,
    ) => {
      const parent = propagation.extract(ROOT_CONTEXT, req.headers);
      const span = tracer.startSpan(`${req.method} ${req.url}`, { kind: SpanKind.SERVER }, parent);
      res.on('finish', () => span.end());
      context.with(trace.setSpan(parent, span), next);
    },
  );
}
