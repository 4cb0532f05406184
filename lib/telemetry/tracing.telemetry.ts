import { CLOUD_EVENT_SPECVERSION, CLOUD_EVENT_TRACEPARENT } from '../codec/cloud-events';
import type * as Otel from '@opentelemetry/api';
import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import { own } from '../util/own-headers';
import { type Outgoing, type Settle, target } from '../transport/outgoing';
import type { Message } from '../transport/transport.interface';
import { isPromiseLike } from '../util/promise-like';
import type { HandlerCall, Incident, RpcResult, SettleOutcome, Telemetry } from './telemetry.interface';

/** What the OpenTelemetry SDK's spans expose besides the API (ReadableSpan; `parentSpanId` before SDK 2). */
interface SdkSpanFields {
  kind?: Otel.SpanKind;
  parentSpanContext?: Otel.SpanContext;
  parentSpanId?: string;
}

/** Reads trace headers the message itself has (an AMQP table may carry a `__proto__` entry). */
const HEADER_GETTER: Otel.TextMapGetter<Record<string, unknown>> = {
  keys: (headers) => Object.keys(headers),
  get: (headers, key) => {
    const value = own(headers, key);
    return typeof value === 'string' ? value : Buffer.isBuffer(value) ? value.toString() : undefined;
  },
};

/** The span attribute naming the module's connection (forRoot's `name`); not a semantic convention, so namespaced. */
export const CONNECTION_ATTRIBUTE = 'nestjs_messaging.connection';

/**
 * W3C trace context through the propagator registered with @opentelemetry/api: what is sent
 * carries the sender's context under a PRODUCER span that ends with the broker's verdict; a
 * handler runs in a CONSUMER span whose parent is the sender's. Attributes follow the messaging
 * semantic conventions.
 *
 * With @opentelemetry/instrumentation-amqplib also active: it never sees our publishes (they are
 * written with amqplib's frame writer, not `channel.publish`), so the context is injected once,
 * here; it does wrap our amqplib consumers, and runs each delivery inside a CONSUMER span of its
 * own, extracted from the same headers. Then that span is the handler's and none is added.
 */
export class TracingTelemetry implements Telemetry {
  private readonly tracer: Otel.Tracer;
  /** The header names the propagator writes; a message that has one already keeps its own. */
  private readonly fields: string[];

  constructor(
    private readonly api: typeof Otel,
    tracerName: string,
    /** Which forRoot's connection: an attribute of every span ('default' without a name). */
    private readonly connection = 'default',
  ) {
    this.tracer = api.trace.getTracer(tracerName);
    this.fields = api.propagation.fields();
  }

  consume<A, R>(queue: string, msg: Message, handle: (arg: A) => R, arg: A): R {
    const { api } = this;
    const parent = api.propagation.extract(api.ROOT_CONTEXT, msg.properties.headers ?? {}, HEADER_GETTER);
    if (this.instrumented(parent)) return handle(arg);
    const span = this.tracer.startSpan(
      `process ${queue}`,
      {
        kind: api.SpanKind.CONSUMER,
        attributes: {
          'messaging.system': 'rabbitmq',
          [CONNECTION_ATTRIBUTE]: this.connection,
          'messaging.operation.type': 'process',
          'messaging.operation.name': 'process',
          'messaging.destination.name': queue,
          'messaging.rabbitmq.destination.routing_key': msg.fields.routingKey,
          'messaging.message.id': msg.properties.messageId,
          'messaging.message.conversation_id': msg.properties.correlationId,
          'messaging.message.body.size': msg.content.length,
        },
      },
      parent,
    );
    return api.context.with(api.trace.setSpan(parent, span), () => {
      let result: R;
      try {
        result = handle(arg);
      } catch (error) {
        this.fail(span, error);
        span.end();
        throw error;
      }
      if (isPromiseLike(result))
        result.then(
          () => span.end(),
          () => span.end(),
        );
      else span.end();
      return result;
    });
  }

  /** Records the handler's failure on the span the delivery runs in (ours, or the amqplib instrumentation's). */
  handler(_queue: string, call: HandlerCall, payload: unknown, context: MessageContext): unknown {
    const span = this.api.trace.getActiveSpan();
    let result: unknown;
    try {
      result = call(payload, context);
    } catch (error) {
      if (span) this.fail(span, error);
      throw error;
    }
    if (!span || !isPromiseLike(result)) return result;
    return Promise.resolve(result).catch((error: unknown) => {
      this.fail(span, error);
      throw error;
    });
  }

  settled(_queue: string, _outcome: SettleOutcome): void {}

  publishing(message: Outgoing, settle: Settle): Settle {
    const { api } = this;
    const active = api.context.active();
    const { properties } = message;
    const span = this.tracer.startSpan(
      `publish ${target(message)}`,
      {
        kind: api.SpanKind.PRODUCER,
        attributes: {
          'messaging.system': 'rabbitmq',
          [CONNECTION_ATTRIBUTE]: this.connection,
          'messaging.operation.type': 'send',
          'messaging.operation.name': 'publish',
          'messaging.destination.name': target(message),
          'messaging.rabbitmq.destination.routing_key': message.routingKey,
          'messaging.message.id': properties.messageId,
          'messaging.message.conversation_id': properties.correlationId,
        },
      },
      active,
    );
    const headers = (properties.headers ??= {});
    // Retry, dead-letter and replayed copies keep the trace context of their original.
    if (!this.fields.some((field) => own(headers, field) !== undefined)) {
      api.propagation.inject(api.trace.setSpan(active, span), headers);
      // A CloudEvent carries it as its distributed-tracing extension too (see codec/cloud-events.ts).
      if (own(headers, CLOUD_EVENT_SPECVERSION) !== undefined && typeof headers.traceparent === 'string') {
        headers[CLOUD_EVENT_TRACEPARENT] = headers.traceparent;
      }
    }
    return (error) => {
      if (error) this.fail(span, error);
      span.end();
      settle(error);
    };
  }

  rpcStarted(): number {
    return 0;
  }

  rpcEnded(_target: string, _startedAt: number, _result: RpcResult): void {}

  reconnected(_role: ConnectionRole): void {}

  incident(_incident: Incident, _subject: string): void {}

  traceId(): string | undefined {
    const context = this.api.trace.getActiveSpan()?.spanContext();
    return context && this.api.isSpanContextValid(context) ? context.traceId : undefined;
  }

  /**
   * Whether the amqplib instrumentation already runs this delivery in its CONSUMER span: the
   * active span is a CONSUMER span whose parent is the span the message carries (none when it
   * carries none). Read from the SDK's spans (ReadableSpan); a span active for another reason (the
   * sender's, when a broker delivers in the sender's async context) does not count.
   */
  private instrumented(parent: Otel.Context): boolean {
    const active = this.api.trace.getActiveSpan() as (Otel.Span & SdkSpanFields) | undefined;
    if (!active?.isRecording() || active.kind !== this.api.SpanKind.CONSUMER) return false;
    const activeParent = active.parentSpanContext?.spanId ?? active.parentSpanId;
    return activeParent === this.api.trace.getSpanContext(parent)?.spanId;
  }

  private fail(span: Otel.Span, error: unknown): void {
    const failure = error instanceof Error ? error : new Error(String(error));
    span.recordException(failure);
    span.setStatus({ code: this.api.SpanStatusCode.ERROR, message: failure.message });
  }
}
