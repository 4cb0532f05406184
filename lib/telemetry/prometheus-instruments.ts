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
  private readonly consumedTotal: Prom.Counter<'connection' | 'queue' | 'outcome'>;
  private readonly handlerSeconds: Prom.Histogram<'connection' | 'queue'>;
  private readonly inFlightGauge: Prom.Gauge<'connection' | 'queue'>;
  private readonly publishedTotal: Prom.Counter<'connection' | 'exchange' | 'result'>;
  private readonly rpcSeconds: Prom.Histogram<'connection' | 'queue' | 'result'>;
  private readonly rpcPendingGauge: Prom.Gauge<'connection'>;
  private readonly reconnectsTotal: Prom.Counter<'connection' | 'role'>;
  private readonly incidentsTotal: Record<Incident, Prom.Counter<string>>;

  constructor(
    prom: typeof Prom,
    registry: Prom.Registry = prom.register,
    /** The `connection` label of every metric: forRoot's `name` ('default' without one). */
    private readonly connection = 'default',
  ) {
    const metric = <M>(spec: Spec, make: (config: { name: string; help: string; registers: Prom.Registry[] }) => M): M =>
      (registry.getSingleMetric(spec.name) as M | undefined) ?? make({ name: spec.name, help: spec.help, registers: [registry] });
    this.consumedTotal = metric(
      METRICS.consumed,
      (c) => new prom.Counter({ ...c, labelNames: ['connection', 'queue', 'outcome'] as const }),
    );
    this.handlerSeconds = metric(
      METRICS.handlerDuration,
      (c) => new prom.Histogram({ ...c, labelNames: ['connection', 'queue'] as const, buckets: DURATION_BUCKETS }),
    );
    this.inFlightGauge = metric(METRICS.inFlight, (c) => new prom.Gauge({ ...c, labelNames: ['connection', 'queue'] as const }));
    this.publishedTotal = metric(
      METRICS.published,
      (c) => new prom.Counter({ ...c, labelNames: ['connection', 'exchange', 'result'] as const }),
    );
    this.rpcSeconds = metric(
      METRICS.rpcDuration,
      (c) => new prom.Histogram({ ...c, labelNames: ['connection', 'queue', 'result'] as const, buckets: DURATION_BUCKETS }),
    );
    this.rpcPendingGauge = metric(METRICS.rpcPending, (c) => new prom.Gauge({ ...c, labelNames: ['connection'] as const }));
    this.reconnectsTotal = metric(METRICS.reconnects, (c) => new prom.Counter({ ...c, labelNames: ['connection', 'role'] as const }));
    this.incidentsTotal = incidentCounters((spec) =>
      metric(spec, (c) => new prom.Counter({ ...c, labelNames: ['connection', spec.label] })),
    );
  }

  consumed(queue: string, outcome: SettleOutcome): void {
    this.consumedTotal.labels(this.connection, queue, outcome).inc();
  }

  handlerDuration(queue: string, seconds: number): void {
    this.handlerSeconds.labels(this.connection, queue).observe(seconds);
  }

  inFlight(queue: string, delta: number): void {
    this.inFlightGauge.labels(this.connection, queue).inc(delta);
  }

  published(exchange: string, result: PublishResult): void {
    this.publishedTotal.labels(this.connection, exchange, result).inc();
  }

  rpcDuration(queue: string, result: RpcResult, seconds: number): void {
    this.rpcSeconds.labels(this.connection, queue, result).observe(seconds);
  }

  rpcPending(delta: number): void {
    this.rpcPendingGauge.labels(this.connection).inc(delta);
  }

  reconnected(role: ConnectionRole): void {
    this.reconnectsTotal.labels(this.connection, role).inc();
  }

  incident(incident: Incident, subject: string): void {
    this.incidentsTotal[incident].labels(this.connection, subject).inc();
  }
}
