import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { metrics } from '@opentelemetry/api';
import {
  AggregationTemporality,
  DataPointType,
  InMemoryMetricExporter,
  MeterProvider,
  PeriodicExportingMetricReader,
  type MetricData,
} from '@opentelemetry/sdk-metrics';
import { Redis } from 'ioredis';
import type { Pool } from 'pg';
import { Registry } from 'prom-client';
import {
  MessageHandler,
  Outbox,
  RedisIdempotencyStore,
  RpcClient,
  RpcTimeoutError,
  UnrecoverableError,
  type IdempotencyStore,
} from '../../lib';
import { deleteKeys, pgPool, redisClient, transaction, uniqueTable } from '../persistence/databases';
import { startAppLogged } from '../reliability/helpers';
import { appModule, startApp } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';
import { listConnections, rabbitmqctl } from '../support/rabbitmq-admin';
import { TcpProxy } from '../support/tcp-proxy';

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

/** Every figure a workload must leave, as [metric, labels, value]; histograms by their count. */
type Figures = Array<[string, Record<string, string>, number]>;

// One OpenTelemetry SDK for the file: the global MeterProvider can be set once. The SDK comes
// first: an app takes its meter when it starts.
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
beforeAll(() => void metrics.setGlobalMeterProvider(meterProvider));
afterAll(() => meterProvider.shutdown());

/** A value (a histogram's count) of a prom-client registry; 0 when the series does not exist. */
async function promValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name} in the registry`);
  const { values } = (await metric.get()) as {
    values: Array<{ value: number; labels: Record<string, string | number>; metricName?: string }>;
  };
  // A histogram's series are its buckets, sum and count: the count it is.
  const wanted = values.some((v) => v.metricName === `${name}_count`) ? `${name}_count` : name;
  const found = values.find(
    (v) => (v.metricName ?? name) === wanted && Object.entries(labels).every(([key, value]) => v.labels[key] === value),
  );
  return found?.value ?? 0;
}

/** The OpenTelemetry instruments as read now: a value (a histogram's count) by name and attributes, 0 when none. */
async function otelReading(): Promise<{ all: MetricData[]; value: (name: string, labels: Record<string, string>) => number }> {
  await reader.forceFlush();
  const all = exporter
    .getMetrics()
    .at(-1)!
    .scopeMetrics.flatMap((scope) => scope.metrics);
  const value = (name: string, labels: Record<string, string>): number => {
    const metric = all.find((m) => m.descriptor.name === name);
    if (!metric) throw new Error(`no instrument ${name}`);
    const point = metric.dataPoints.find((p) => Object.entries(labels).every(([key, value]) => p.attributes[key] === value));
    if (!point) return 0;
    return metric.dataPointType === DataPointType.HISTOGRAM ? (point.value as { count: number }).count : (point.value as number);
  };
  return { all, value };
}

describe('metrics after a counted workload (prom-client and OpenTelemetry)', () => {
  const serviceName = unique('svc-metrics');
  const queues = {
    ok: unique('m-ok'),
    flaky: unique('m-flaky'),
    dead: unique('m-dead'),
    answer: unique('m-answer'),
    silent: unique('m-silent'),
  };
  const registry = new Registry();
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
    broker = await Broker.open();
    for (const queue of Object.values(queues)) broker.queue(queue);
    // Declared, never consumed: requests to it time out.
    await broker.channel.assertQueue(queues.silent, { durable: true });
    app = await startApp(appModule({ serviceName, metrics: { prometheus: { registry }, opentelemetry: true } }, { providers: [Handlers] }));
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
    await waitFor(
      async () => (await prom('messaging_messages_consumed_total', { queue: queues.dead, outcome: 'dead_lettered' })) === K,
      'the workload to settle',
    );
    await waitFor(
      async () => (await prom('messaging_messages_consumed_total', { queue: queues.flaky, outcome: 'acked' })) === M,
      'the retries',
    );

    // One real connection loss: only this app's consumer connection, found by its name.
    const own = (await listConnections()).filter(({ name }) => name === `${serviceName}:consumer`);
    expect(own).toHaveLength(1);
    await rabbitmqctl('close_connection', own[0].pid, 'operations test: reconnect metric');
    await waitFor(async () => (await prom('messaging_reconnects_total', { role: 'consumer' })) === 1, 'the reconnect', 15_000);
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  const expected = (): Figures => [
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

  const prom = (name: string, labels: Record<string, string>) => promValue(registry, name, labels);

  it('prom-client: every count of the workload', async () => {
    for (const [name, labels, value] of expected()) expect([name, labels, await prom(name, labels)]).toEqual([name, labels, value]);
    expect(registry.getSingleMetric('messaging_messages_published_total')).toBeDefined();
    const text = await registry.metrics();
    expect(text).toContain('# TYPE messaging_handler_duration_seconds histogram');
    expect(text).not.toMatch(/result="(returned|nacked|failed)"/);
  });

  it('OpenTelemetry: the same instruments with the same counts', async () => {
    const { all, value: otel } = await otelReading();
    for (const [name, labels, value] of expected()) expect([name, labels, otel(name, labels)]).toEqual([name, labels, value]);
    expect(all.find((m) => m.descriptor.name === 'messaging_handler_duration_seconds')?.descriptor.unit).toBe('s');
  });
});

/**
 * What the module warns about is counted too (cases 59, 58, 66): an outbox row parked because its
 * exchange is missing, idempotency claims the store could not answer (its Redis cut through a
 * TcpProxy) and a handler outliving its lease with a store that cannot renew. Each count must
 * match the warnings the app logged.
 */
describe('metrics beside warnings (prom-client and OpenTelemetry)', () => {
  const serviceName = unique('svc-metrics-warn');
  const queues = { checked: unique('m-idem'), slow: unique('m-idem-slow') };
  // Never declared: the outbox row to it is parked.
  const missing = unique('m-missing');
  const table = uniqueTable('metrics_outbox');
  const keyPrefix = `${unique('m-idem')}:`;
  const leaseMs = 200;
  const registry = new Registry();
  const logger = new CaptureLogger();
  const handled = { checked: deferred(), slow: deferred() };
  let broker: Broker;
  let pool: Pool;
  let proxy: TcpProxy;
  let redis: Redis;
  let app: INestApplicationContext;

  @Injectable()
  class Handlers {
    @MessageHandler({ queue: queues.checked, idempotent: true })
    checked(): void {
      handled.checked.resolve();
    }

    @MessageHandler({ queue: queues.slow, idempotent: true })
    async slow(): Promise<void> {
      await new Promise((resolve) => setTimeout(resolve, 3 * leaseMs));
      handled.slow.resolve();
    }
  }

  /** Warnings the app logged that contain `text`. */
  const warnings = (text: string) => logger.find(text, 'warn').length;

  beforeAll(async () => {
    broker = await Broker.open();
    for (const queue of Object.values(queues)) broker.queue(queue);
    pool = pgPool();
    proxy = await TcpProxy.start(6379);
    // Fails a command soon while the proxy refuses connections, instead of queueing it.
    redis = new Redis({ host: '127.0.0.1', port: proxy.port, maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined);
    const redisStore = new RedisIdempotencyStore(redis, { keyPrefix });
    // Without renew: a handler that outlives its lease is warned about.
    const store: IdempotencyStore = {
      claim: (...a) => redisStore.claim(...a),
      complete: (...a) => redisStore.complete(...a),
      release: (...a) => redisStore.release(...a),
    };
    app = await startAppLogged(
      appModule(
        {
          serviceName,
          metrics: { prometheus: { registry }, opentelemetry: true },
          reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
          outbox: { pool, table, pollIntervalMs: 50 },
          idempotency: { store, leaseMs, storeTimeoutMs: 500 },
        },
        { providers: [Handlers] },
      ),
      logger,
    );

    const outbox = app.get(Outbox);
    await transaction(pool, async (client) => void (await outbox.publish(client, missing, 'nowhere', {})));
    await waitFor(() => outbox.parked === 1, 'the outbox row to be parked');

    proxy.cut();
    const rpc = app.get(RpcClient);
    await rpc.send(queues.checked, {}, { messageId: 'checked' });
    await waitFor(() => warnings('idempotency store is unreachable') >= 2, 'two claims the store could not answer');
    proxy.resume();
    await handled.checked.promise;

    await rpc.send(queues.slow, {}, { messageId: 'slow' });
    await handled.slow.promise;
    expect(warnings('still runs after its lease')).toBe(1);
  });

  afterAll(async () => {
    proxy?.resume();
    await app?.close();
    redis?.disconnect();
    await proxy?.close();
    const direct = redisClient();
    await deleteKeys(direct, keyPrefix);
    direct.disconnect();
    await pool?.query(`DROP TABLE IF EXISTS ${table}`);
    await pool?.end();
    await broker?.cleanup();
  });

  /** Per case, the counts it must leave: one per warning logged. */
  const cases: Record<string, () => Figures> = {
    'an outbox row parked for its missing exchange (59)': () => [['messaging_outbox_parked_total', { exchange: missing }, 1]],
    'claims the idempotency store could not answer (58)': () => [
      ['messaging_idempotency_store_failures_total', { queue: queues.checked }, warnings('idempotency store is unreachable')],
    ],
    'a handler that outlives its lease, with a store that cannot renew (66)': () => [
      ['messaging_idempotency_lease_warnings_total', { queue: queues.slow }, warnings('still runs after its lease')],
      ['messaging_idempotency_lease_warnings_total', { queue: queues.checked }, 0],
    ],
  };

  it.each(Object.keys(cases))('%s: counted in prom-client and in OpenTelemetry', async (name) => {
    const { value: otel } = await otelReading();
    for (const [metric, labels, value] of cases[name]()) {
      expect(['prom-client', metric, labels, await promValue(registry, metric, labels)]).toEqual(['prom-client', metric, labels, value]);
      expect(['OpenTelemetry', metric, labels, otel(metric, labels)]).toEqual(['OpenTelemetry', metric, labels, value]);
    }
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
    const { createTelemetry } = await import('../../lib/telemetry/telemetry-factory');
    expect(createTelemetry(resolveOptions({ uri }).metrics)).toBe(createTelemetry(resolveOptions({ uri, metrics: {} }).metrics));
  });
});
