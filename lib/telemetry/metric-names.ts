import type { Incident } from './telemetry.interface';

/**
 * The instruments, named as the documentation promises; the Prometheus and OpenTelemetry
 * adapters both take names, help texts and buckets from here.
 */
export const METRICS = {
  consumed: {
    name: 'messaging_messages_consumed_total',
    help: 'Deliveries settled, by queue and outcome (acked, retried, dead_lettered, requeued)',
  },
  handlerDuration: { name: 'messaging_handler_duration_seconds', help: 'Time handlers took, by queue' },
  inFlight: { name: 'messaging_messages_in_flight', help: 'Deliveries being handled now, by queue' },
  published: {
    name: 'messaging_messages_published_total',
    help: 'Publishes by exchange and verdict (confirmed, returned, nacked, failed)',
  },
  rpcDuration: {
    name: 'messaging_rpc_duration_seconds',
    help: 'Time requests and gathers waited, by target and result (answered, timed_out, failed)',
  },
  rpcPending: { name: 'messaging_rpc_pending', help: 'Requests and gathers waiting for replies' },
  reconnects: { name: 'messaging_reconnects_total', help: 'Connections re-established after a loss, by role (publisher, consumer)' },
} as const;

/** A counter of incidents, labelled by their subject. */
export interface IncidentMetric {
  name: string;
  help: string;
  label: 'exchange' | 'queue';
}

/** One counter per incident (see Incident). */
export const INCIDENT_METRICS: Record<Incident, IncidentMetric> = {
  outboxParked: {
    name: 'messaging_outbox_parked_total',
    help: 'Outbox rows parked because the broker refused their exchange, by exchange',
    label: 'exchange',
  },
  idempotencyStoreFailure: {
    name: 'messaging_idempotency_store_failures_total',
    help: 'Deliveries returned to their queue because the idempotency store failed or did not answer, by queue',
    label: 'queue',
  },
  idempotencyLeaseWarning: {
    name: 'messaging_idempotency_lease_warnings_total',
    help: 'Warnings that the idempotency claim of a running handler is not kept (lease outlived without renew, renewal failed, claim gone), by queue',
    label: 'queue',
  },
};

/** The counters of INCIDENT_METRICS on one metrics library, made by `make`. */
export function incidentCounters<C>(make: (metric: IncidentMetric) => C): Record<Incident, C> {
  const counters = {} as Record<Incident, C>;
  for (const incident of Object.keys(INCIDENT_METRICS) as Incident[]) counters[incident] = make(INCIDENT_METRICS[incident]);
  return counters;
}

/** Seconds: from a fast in-memory handler to a slow remote call. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
