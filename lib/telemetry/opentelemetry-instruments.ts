import type * as Otel from '@opentelemetry/api';
import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MetricInstruments } from './metric-instruments';
import { DURATION_BUCKETS, INCIDENT_METRICS, incidentCounters, METRICS } from './metric-names';
import type { Incident, PublishResult, RpcResult, SettleOutcome } from './telemetry.interface';

/** The same instruments on the meter of the global MeterProvider (registered before the app starts). */
export class OpenTelemetryInstruments implements MetricInstruments {
  private readonly consumedTotal: Otel.Counter;
  private readonly handlerSeconds: Otel.Histogram;
  private readonly inFlightGauge: Otel.UpDownCounter;
  private readonly publishedTotal: Otel.Counter;
  private readonly rpcSeconds: Otel.Histogram;
  private readonly rpcPendingGauge: Otel.UpDownCounter;
  private readonly reconnectsTotal: Otel.Counter;
  private readonly incidentsTotal: Record<Incident, Otel.Counter>;

  constructor(
    api: typeof Otel,
    meterName: string,
    /** The `connection` attribute of every measurement: forRoot's `name` ('default' without one). */
    private readonly connection = 'default',
  ) {
    const meter = api.metrics.getMeter(meterName);
    const seconds = { unit: 's', advice: { explicitBucketBoundaries: DURATION_BUCKETS } };
    this.consumedTotal = meter.createCounter(METRICS.consumed.name, { description: METRICS.consumed.help });
    this.handlerSeconds = meter.createHistogram(METRICS.handlerDuration.name, { description: METRICS.handlerDuration.help, ...seconds });
    this.inFlightGauge = meter.createUpDownCounter(METRICS.inFlight.name, { description: METRICS.inFlight.help });
    this.publishedTotal = meter.createCounter(METRICS.published.name, { description: METRICS.published.help });
    this.rpcSeconds = meter.createHistogram(METRICS.rpcDuration.name, { description: METRICS.rpcDuration.help, ...seconds });
    this.rpcPendingGauge = meter.createUpDownCounter(METRICS.rpcPending.name, { description: METRICS.rpcPending.help });
    this.reconnectsTotal = meter.createCounter(METRICS.reconnects.name, { description: METRICS.reconnects.help });
    this.incidentsTotal = incidentCounters((spec) => meter.createCounter(spec.name, { description: spec.help }));
  }

  consumed(queue: string, outcome: SettleOutcome): void {
    this.consumedTotal.add(1, { connection: this.connection, queue, outcome });
  }

  handlerDuration(queue: string, seconds: number): void {
    this.handlerSeconds.record(seconds, { connection: this.connection, queue });
  }

  inFlight(queue: string, delta: number): void {
    this.inFlightGauge.add(delta, { connection: this.connection, queue });
  }

  published(exchange: string, result: PublishResult): void {
    this.publishedTotal.add(1, { connection: this.connection, exchange, result });
  }

  rpcDuration(queue: string, result: RpcResult, seconds: number): void {
    this.rpcSeconds.record(seconds, { connection: this.connection, queue, result });
  }

  rpcPending(delta: number): void {
    this.rpcPendingGauge.add(delta, { connection: this.connection });
  }

  reconnected(role: ConnectionRole): void {
    this.reconnectsTotal.add(1, { connection: this.connection, role });
  }

  incident(incident: Incident, subject: string): void {
    this.incidentsTotal[incident].add(1, { connection: this.connection, [INCIDENT_METRICS[incident].label]: subject });
  }
}
