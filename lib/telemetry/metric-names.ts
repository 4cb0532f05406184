/**
 * The instruments, named as the documentation promises; the Prometheus and OpenTelemetry
 * adapters both take names, help texts and buckets from here.
 */
export const METRICS = {
  consumed: { name: 'messaging_messages_consumed_total', help: 'Deliveries settled, by queue and outcome (acked, retried, dead_lettered, requeued)' },
  handlerDuration: { name: 'messaging_handler_duration_seconds', help: 'Time handlers took, by queue' },
  inFlight: { name: 'messaging_messages_in_flight', help: 'Deliveries being handled now, by queue' },
  published: { name: 'messaging_messages_published_total', help: 'Publishes by exchange and verdict (confirmed, returned, nacked, failed)' },
  rpcDuration: { name: 'messaging_rpc_duration_seconds', help: 'Time requests and gathers waited, by target and result (answered, timed_out, failed)' },
  rpcPending: { name: 'messaging_rpc_pending', help: 'Requests and gathers waiting for replies' },
  reconnects: { name: 'messaging_reconnects_total', help: 'Connections re-established after a loss, by role (publisher, consumer)' },
} as const;

/** Seconds: from a fast in-memory handler to a slow remote call. */
export const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
