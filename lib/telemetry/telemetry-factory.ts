import type * as Otel from '@opentelemetry/api';
import type * as Prom from 'prom-client';
import type { MetricsOptions } from '../interfaces/messaging-options.interface';
import { CompositeTelemetry } from './composite.telemetry';
import { MetricsTelemetry } from './metrics.telemetry';
import { NOOP_TELEMETRY } from './noop.telemetry';
import { OpenTelemetryInstruments } from './opentelemetry-instruments';
import { optionalPeer, requiredPeer } from './optional-peer';
import { PrometheusInstruments } from './prometheus-instruments';
import type { Telemetry } from './telemetry.interface';
import { TracingTelemetry } from './tracing.telemetry';

/** Names the module's tracer and meter. */
const INSTRUMENTATION_NAME = 'nestjs-messaging';

/**
 * The telemetry the options ask for: metrics per `metrics` (checked by resolveOptions), and
 * tracing whenever @opentelemetry/api is installed and a propagator is registered (by an
 * OpenTelemetry SDK set up before the app starts). With neither, the no-op. Fails with
 * MessagingConfigError when a peer the metrics need is missing. Every metric carries `connection`.
 */
export function createTelemetry({ prometheus, opentelemetry }: MetricsOptions, connection = 'default'): Telemetry {
  const parts: Telemetry[] = [];
  const api = optionalPeer<typeof Otel>('@opentelemetry/api');
  // An SDK registers a propagator; without one, nothing would be injected nor recorded.
  if (api && api.propagation.fields().length > 0) parts.push(new TracingTelemetry(api, INSTRUMENTATION_NAME, connection));
  if (prometheus) {
    const prom = requiredPeer<typeof Prom>('prom-client', 'metrics.prometheus');
    const registry = prometheus === true ? undefined : (prometheus.registry as Prom.Registry);
    parts.push(new MetricsTelemetry(new PrometheusInstruments(prom, registry, connection)));
  }
  if (opentelemetry) {
    const otel = requiredPeer<typeof Otel>('@opentelemetry/api', 'metrics.opentelemetry');
    parts.push(new MetricsTelemetry(new OpenTelemetryInstruments(otel, INSTRUMENTATION_NAME, connection)));
  }
  if (parts.length === 0) return NOOP_TELEMETRY;
  return parts.length === 1 ? parts[0] : new CompositeTelemetry(parts);
}
