import type * as Otel from '@opentelemetry/api';
import type * as Prom from 'prom-client';
import type { MetricsOptions } from '../interfaces/messaging-options.interface';
import { MessagingConfigError } from '../messaging.errors';
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
 * The telemetry the options ask for: metrics per `metrics`, and tracing whenever
 * @opentelemetry/api is installed and a propagator is registered (by an OpenTelemetry SDK set up
 * before the app starts). With neither, the no-op. Fails with MessagingConfigError on a
 * malformed `metrics` option or a missing peer.
 */
export function createTelemetry(metrics: unknown): Telemetry {
  const { prometheus, opentelemetry } = checkMetrics(metrics);
  const parts: Telemetry[] = [];
  const api = optionalPeer<typeof Otel>('@opentelemetry/api');
  // An SDK registers a propagator; without one, nothing would be injected nor recorded.
  if (api && api.propagation.fields().length > 0) parts.push(new TracingTelemetry(api, INSTRUMENTATION_NAME));
  if (prometheus) {
    const prom = requiredPeer<typeof Prom>('prom-client', 'metrics.prometheus');
    const registry = prometheus === true ? undefined : (prometheus.registry as Prom.Registry);
    parts.push(new MetricsTelemetry(new PrometheusInstruments(prom, registry)));
  }
  if (opentelemetry) {
    const otel = requiredPeer<typeof Otel>('@opentelemetry/api', 'metrics.opentelemetry');
    parts.push(new MetricsTelemetry(new OpenTelemetryInstruments(otel, INSTRUMENTATION_NAME)));
  }
  if (parts.length === 0) return NOOP_TELEMETRY;
  return parts.length === 1 ? parts[0] : new CompositeTelemetry(parts);
}

function checkMetrics(value: unknown): MetricsOptions {
  if (value === undefined) return {};
  const fail = (option: string, expected: string): never => {
    throw new MessagingConfigError(`MessagingModule option "${option}" must be ${expected}`);
  };
  if (typeof value !== 'object' || value === null) fail('metrics', 'an object { prometheus?, opentelemetry? }');
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (key !== 'prometheus' && key !== 'opentelemetry') fail(`metrics.${key}`, 'left out: "metrics" takes prometheus and opentelemetry');
  }
  const { prometheus, opentelemetry } = given;
  const registry = (prometheus as { registry?: { getSingleMetric?: unknown } } | null)?.registry;
  if (prometheus !== undefined && typeof prometheus !== 'boolean' && typeof registry?.getSingleMetric !== 'function') {
    fail('metrics.prometheus', 'true, false or { registry } with a prom-client Registry');
  }
  if (opentelemetry !== undefined && typeof opentelemetry !== 'boolean') fail('metrics.opentelemetry', 'true or false');
  return given as MetricsOptions;
}
