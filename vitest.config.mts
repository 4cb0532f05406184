import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * The behaviour of the module (commands, events, broadcast, RPC, gather, scope, retries, dead
 * letters, shutdown, Nest's pipeline, payloads) is one suite that runs twice: on RabbitMQ and on
 * the in-memory broker (`TEST_TRANSPORT=memory`), so the two cannot drift apart. Unit tests
 * need no broker; the fault tests of test/reliability (which need RabbitMQ's tools and wire) run
 * on RabbitMQ only. Without a broker, `npm test` runs `unit` and `memory` (scripts/test.mjs).
 *
 * One broker serves every integration test, and some tests act on all of it (closing every
 * connection, memory alarms), so files run one at a time in a real child process (its `process`
 * is the one the module sees, unlike a sandbox). SWC compiles the TypeScript because Nest's
 * dependency injection needs `emitDecoratorMetadata`, which esbuild does not emit.
 */
const BEHAVIOUR_SUITE = ['test/integration/**/*.spec.ts'];
/**
 * Behaviour files that only RabbitMQ can host: amqplib's wire, and workers in separate processes
 * (the in-memory broker serves one process).
 */
const RABBITMQ_ONLY = ['test/integration/amqplib-internals.spec.ts', 'test/integration/scale-down.spec.ts'];
/**
 * test/cluster: a three-node RabbitMQ cluster that `npm run test:cluster` (test/cluster/run.sh)
 * starts and tears down. The project exists only when that script sets TEST_CLUSTER, so the
 * default run (which runs every project) never tries it without its cluster.
 */
const CLUSTER = process.env.TEST_CLUSTER
  ? [
      {
        extends: true,
        test: {
          name: 'cluster',
          include: ['test/cluster/**/*.spec.ts'],
          testTimeout: 180_000,
          hookTimeout: 60_000,
          env: { TEST_TRANSPORT: 'rabbitmq' },
        },
      },
    ]
  : [];

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    pool: 'forks',
    fileParallelism: false,
    execArgv: ['--expose-gc'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    reporters: ['default', './test/support/summary-reporter.mjs'],
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.spec.ts'] } },
      {
        extends: true,
        test: {
          name: 'rabbitmq',
          // operations/: probes, metrics and traces under real faults; persistence/: idempotency and
          // the outbox against PostgreSQL and Redis.
          include: [...BEHAVIOUR_SUITE, 'test/reliability/**/*.spec.ts', 'test/operations/**/*.spec.ts', 'test/persistence/**/*.spec.ts'],
          env: { TEST_TRANSPORT: 'rabbitmq' },
          globalSetup: ['test/support/global-setup.mjs'],
        },
      },
      {
        extends: true,
        test: { name: 'memory', include: BEHAVIOUR_SUITE, exclude: RABBITMQ_ONLY, env: { TEST_TRANSPORT: 'memory' } },
      },
      ...CLUSTER,
    ],
  },
});
