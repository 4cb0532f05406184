import type * as Prom from 'prom-client';
import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MetricInstruments } from './metric-instruments';
import { DURATION_BUCKETS, incidentCounters, METRICS } from './metric-names';
import type { Incident, PublishResult, RpcResult, SettleOutcome } from './telemetry.interface';

type Spec = { name: string; help: string };

/**
 * The instruments as prom-client metrics in `registry`. A metric of the same name already there
 * (a second app in the process, or an app created again) is taken over, not registered twice,
 * which prom-client would refuse.
 */
export class PrometheusInstruments implements MetricInstruments {
  private readonly consumedTotal: Prom.Counter<'queue' | 'outcome'>;
  private readonly handlerSeconds: Prom.Histogram<'queue'>;
  private readonly inFlightGauge: Prom.Gauge<'queue'>;
  private readonly publishedTotal: Prom.Counter<'exchange' | 'result'>;
  private readonly rpcSeconds: Prom.Histogram<'queue' | 'result'>;
  private readonly rpcPendingGauge: Prom.Gauge;
  private readonly reconnectsTotal: Prom.Counter<'role'>;
  private readonly incidentsTotal: Record<Incident, Prom.Counter<string>>;

  constructor(prom: typeof Prom, registry: Prom.Registry = prom.register) {
    const metric = <M>(spec: Spec, make: (config: { name: string; help: string; registers: Prom.Registry[] }) => M): M =>
      (registry.getSingleMetric(spec.name) as M | undefined) ?? make({ name: spec.name, help: spec.help, registers: [registry] });
    this.consumedTotal = metric(METRICS.consumed, (c) => new prom.Counter({ ...c, labelNames: ['queue', 'outcome'] as const }));
    this.handlerSeconds = metric(
      METRICS.handlerDuration,
      (c) => new prom.Histogram({ ...c, labelNames: ['queue'] as const, buckets: DURATION_BUCKETS }),
    );
    this.inFlightGauge = metric(METRICS.inFlight, (c) => new prom.Gauge({ ...c, labelNames: ['queue'] as const }));
    this.publishedTotal = metric(METRICS.published, (c) => new prom.Counter({ ...c, labelNames: ['exchange', 'result'] as const }));
    this.rpcSeconds = metric(
      METRICS.rpcDuration,
      (c) => new prom.Histogram({ ...c, labelNames: ['queue', 'result'] as const, buckets: DURATION_BUCKETS }),
    );
    this.rpcPendingGauge = metric(METRICS.rpcPending, (c) => new prom.Gauge(c));
    this.reconnectsTotal = metric(METRICS.reconnects, (c) => new prom.Counter({ ...c, labelNames: ['role'] as const }));
    this.incidentsTotal = incidentCounters((spec) => metric(spec, (c) => new prom.Counter({ ...c, labelNames: [spec.label] })));
  }

  consumed(queue: string, outcome: SettleOutcome): void {
    this.consumedTotal.labels(queue, outcome).inc();
  }

  handlerDuration(queue: string, seconds: number): void {
    this.handlerSeconds.labels(queue).observe(seconds);
  }

  inFlight(queue: string, delta: number): void {
    this.inFlightGauge.labels(queue).inc(delta);
  }

  published(exchange: string, result: PublishResult): void {
    this.publishedTotal.labels(exchange, result).inc();
  }

  rpcDuration(queue: string, result: RpcResult, seconds: number): void {
    this.rpcSeconds.labels(queue, result).observe(seconds);
  }

  rpcPending(delta: number): void {
    this.rpcPendingGauge.inc(delta);
  }

  reconnected(role: ConnectionRole): void {
    this.reconnectsTotal.labels(role).inc();
  }

  incident(incident: Incident, subject: string): void {
    this.incidentsTotal[incident].labels(subject).inc();
  }
}
