import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { Registry } from 'prom-client';
import { MessageHandler, RpcClient, RpcTimeoutError, UnrecoverableError } from '../../lib';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { listConnections, rabbitmqctl } from '../support/rabbitmq-admin';

/**
 * A counted workload (N handled, M retried once, K dead-lettered, R requests answered, T timed
 * out, one lost consumer connection), read back from a prom-client registry and from an
 * OpenTelemetry in-memory metric reader: one app records into both.
 */
const N = 5;
const M = 3;
const K = 2;
const R = 4;
const T = 2;

describe('metrics after a counted workload (prom-client and OpenTelemetry)', () => {
  const serviceName = unique('svc-metrics');
  const queues = { ok: unique('m-ok'), flaky: unique('m-flaky'), dead: unique('m-dead'), answer: unique('m-answer'), silent: unique('m-silent') };
  const registry = new Registry();
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const tried = new Set<number>();
  let broker: Broker;
  let app: INestApplicationContext;

  @Injectable()
  class Handlers {
    @MessageHandler(queues.ok)
    ok(): void {}

    // Each message fails on its first try only.
    @MessageHandler({ queue: queues.flaky, retry: { attempts: 2, delaysMs: [0] } })
    flaky({ n }: { n: number }): void {
      if (!tried.has(n)) {
        tried.add(n);
        throw new Error(`first try of ${n}`);
      }
    }

    @MessageHandler(queues.dead)
    dead(): void {
      throw new UnrecoverableError('never');
    }

    @MessageHandler(queues.answer)
    answer({ n }: { n: number }): number {
      return n * 2;
    }
  }

  beforeAll(async () => {
    // The SDK comes first: the module takes its meter when it starts.
    metrics.setGlobalMeterProvider(meterProvider);
    broker = await Broker.open();
    for (const queue of Object.values(queues)) broker.queue(queue);
    // Declared, never consumed: requests to it time out.
    await broker.channel.assertQueue(queues.silent, { durable: false });
    app = await startApp(
      appModule({ serviceName, metrics: { prometheus: { registry }, opentelemetry: true } }, { providers: [Handlers] }),
    );
    const rpc = app.get(RpcClient);
    const sends = [
      ...Array.from({ length: N }, (_, n) => rpc.send(queues.ok, { n })),
      ...Array.from({ length: M }, (_, n) => rpc.send(queues.flaky, { n })),
      ...Array.from({ length: K }, (_, n) => rpc.send(queues.dead, { n })),
    ];
    await Promise.all(sends);
    const answers = await Promise.all(Array.from({ length: R }, (_, n) => rpc.request<number>(queues.answer, { n })));
    expect(answers).toEqual([0, 2, 4, 6]);
    const timeouts = await Promise.allSettled(Array.from({ length: T }, () => rpc.request(queues.silent, {}, { timeoutMs: 200 })));
    expect(timeouts.every((t) => t.status === 'rejected' && t.reason instanceof RpcTimeoutError)).toBe(true);
    await waitFor(async () => (await prom('messaging_messages_consumed_total', { queue: queues.dead, outcome: 'dead_lettered' })) === K, 'the workload to settle');
    await waitFor(async () => (await prom('messaging_messages_consumed_total', { queue: queues.flaky, outcome: 'acked' })) === M, 'the retries');

    // One real connection loss: only this app's consumer connection, found by its name.
    const own = (await listConnections()).filter(({ name }) => name === `${serviceName}:consumer`);
    expect(own).toHaveLength(1);
    await rabbitmqctl('close_connection', own[0].pid, 'operations test: reconnect metric');
    await waitFor(async () => (await prom('messaging_reconnects_total', { role: 'consumer' })) === 1, 'the reconnect', 15_000);
  });

  afterAll(async () => {
    await app?.close();
    await meterProvider.shutdown();
    await broker.cleanup();
  });

  /** Every figure the workload must leave, as [metric, labels, value]; histograms by their count. */
  const expected = (): Array<[string, Record<string, string>, number]> => [
    ['messaging_messages_consumed_total', { queue: queues.ok, outcome: 'acked' }, N],
    ['messaging_messages_consumed_total', { queue: queues.flaky, outcome: 'retried' }, M],
    ['messaging_messages_consumed_total', { queue: queues.flaky, outcome: 'acked' }, M],
    ['messaging_messages_consumed_total', { queue: queues.dead, outcome: 'dead_lettered' }, K],
    ['messaging_messages_consumed_total', { queue: queues.answer, outcome: 'acked' }, R],
    ['messaging_handler_duration_seconds', { queue: queues.ok }, N],
    ['messaging_handler_duration_seconds', { queue: queues.flaky }, 2 * M],
    ['messaging_handler_duration_seconds', { queue: queues.dead }, K],
    ['messaging_handler_duration_seconds', { queue: queues.answer }, R],
    ['messaging_messages_in_flight', { queue: queues.ok }, 0],
    ['messaging_messages_in_flight', { queue: queues.flaky }, 0],
    // Sends, retry copies, dead-letter copies, requests and their direct replies: all through the default exchange.
    ['messaging_messages_published_total', { exchange: '', result: 'confirmed' }, N + M + K + M + K + R + T + R],
    ['messaging_rpc_duration_seconds', { queue: queues.answer, result: 'answered' }, R],
    ['messaging_rpc_duration_seconds', { queue: queues.silent, result: 'timed_out' }, T],
    ['messaging_rpc_pending', {}, 0],
    ['messaging_reconnects_total', { role: 'consumer' }, 1],
  ];

  /** A value (a histogram's count) of the prom-client registry; 0 when the series does not exist. */
  async function prom(name: string, labels: Record<string, string>): Promise<number> {
    const metric = registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name} in the registry`);
    const { values } = (await metric.get()) as { values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }> };
    // A histogram's series are its buckets, sum and count: the count it is.
    const wanted = values.some((v) => v.metricName === `${name}_count`) ? `${name}_count` : name;
    const found = values.find(
      (v) => (v.metricName ?? name) === wanted && Object.entries(labels).every(([key, value]) => v.labels[key] === value),
    );
    return found?.value ?? 0;
  }

  it('prom-client: every count of the workload', async () => {
    for (const [name, labels, value] of expected()) expect([name, labels, await prom(name, labels)]).toEqual([name, labels, value]);
    expect(registry.getSingleMetric('messaging_messages_published_total')).toBeDefined();
    const text = await registry.metrics();
    expect(text).toContain('# TYPE messaging_handler_duration_seconds histogram');
    expect(text).not.toMatch(/result="(returned|nacked|failed)"/);
  });

  it('OpenTelemetry: the same instruments with the same counts', async () => {
    await reader.forceFlush();
    const scopes = exporter.getMetrics().at(-1)!.scopeMetrics;
    const all = scopes.flatMap((scope) => scope.metrics);
    const otel = (name: string, labels: Record<string, string>): number => {
      const metric = all.find((m) => m.descriptor.name === name);
      if (!metric) throw new Error(`no instrument ${name}`);
      const point = metric.dataPoints.find((p) => Object.entries(labels).every(([key, value]) => p.attributes[key] === value));
      if (!point) return 0;
      return metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number);
    };
    for (const [name, labels, value] of expected()) expect([name, labels, otel(name, labels)]).toEqual([name, labels, value]);
    expect(all.find((m) => m.descriptor.name === 'messaging_handler_duration_seconds')?.descriptor.unit).toBe('s');
  });
});

describe('the metrics option', () => {
  it('is checked at startup, with messages that name it', async () => {
    const { resolveOptions } = await import('../../lib/messaging.options');
    const { MessagingConfigError } = await import('../../lib');
    const uri = 'amqp://localhost';
    expect(() => resolveOptions({ uri, metrics: { prometheus: 'yes' as never } })).toThrow(MessagingConfigError);
    expect(() => resolveOptions({ uri, metrics: { prometheus: { registry: {} as never } } })).toThrow(/metrics\.prometheus.*Registry/);
    expect(() => resolveOptions({ uri, metrics: { statsd: true } as never })).toThrow(/metrics\.statsd/);
    expect(() => resolveOptions({ uri, metrics: { opentelemetry: 1 as never } })).toThrow(/metrics\.opentelemetry/);
    // Nothing asked for: the no-op, shared, whatever else is installed.
    expect(resolveOptions({ uri }).telemetry).toBe(resolveOptions({ uri, metrics: {} }).telemetry);
  });
});
