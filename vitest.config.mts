import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

/**
 * The behaviour of the module (commands, events, broadcast, RPC, gather, scope, retries, dead
 * letters, shutdown, Nest's pipeline, payloads) is one suite that runs twice: on RabbitMQ and on
 * the in-memory broker (`TEST_TRANSPORT=memory`), so the two cannot drift apart. Unit tests
 * need no broker. Without a broker, `npm test` runs `unit` and `memory` (scripts/test.mjs).
 *
 * Two groups, one after the other:
 *   0. `unit`, `memory` and `rabbitmq` (the behaviour suite on RabbitMQ), files in parallel: each
 *      test declares its own uniquely named queues and exchanges, and none acts on the whole broker;
 *   1. `faults` (test/reliability, test/operations, test/persistence), one file at a time and alone:
 *      those tests act on all of the broker (closing every connection, memory alarms, watermarks)
 *      or on PostgreSQL and Redis through proxies they cut; and, on RabbitMQ, the behaviour files
 *      that make vhosts (SERIAL_ON_RABBITMQ).
 * Files run in real child processes (their `process` is the one the module sees, unlike a sandbox).
 * SWC compiles the TypeScript because Nest's dependency injection needs `emitDecoratorMetadata`,
 * which esbuild does not emit.
 */
const BEHAVIOUR_SUITE = ['test/integration/**/*.spec.ts'];
/**
 * Behaviour files that only RabbitMQ can host: amqplib's wire, workers in separate processes (the
 * in-memory broker serves one process), and Nest's own RMQ transport.
 */
const RABBITMQ_ONLY = [
  'test/integration/amqplib-internals.spec.ts',
  'test/integration/scale-down.spec.ts',
  // Nest's own RMQ transport, on the other side of the wire, speaks amqplib.
  'test/integration/nest-rmq-interop.spec.ts',
];
/** Tests that act on the whole broker (or database): never beside another test. */
const FAULTS = ['test/reliability/**/*.spec.ts', 'test/operations/**/*.spec.ts', 'test/persistence/**/*.spec.ts'];
/**
 * Behaviour files that run beside the fault tests on RabbitMQ, not in parallel with the behaviour
 * suite: they make vhosts with rabbitmqctl, an Erlang VM per call, whose seconds of CPU each would
 * starve the tests running beside them.
 */
const SERIAL_ON_RABBITMQ = ['test/integration/named-connections.spec.ts'];
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
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 60_000,
          env: { TEST_TRANSPORT: 'rabbitmq' },
        },
      },
    ]
  : [];

/**
 * Nest's own ServerRMQ (test/integration/nest-rmq-interop.spec.ts plays the other side of the
 * wire with it) publishes each reply without awaiting its confirm; closing it while one is still
 * unconfirmed rejects that promise unhandled ("Channel closed" from amqp-connection-manager, thrown
 * in ServerRMQ.close). Not this module's code, and nothing is lost: the reply had arrived. That one
 * error, and no other, is not counted as a failure of the run.
 */
function isNestRmqServerCloseRace(error: Error): boolean | void {
  if (error.message === 'Channel closed' && /microservices[\\/]server[\\/]server-rmq/.test(error.stack ?? '')) return false;
}

export default defineConfig({
  plugins: [swc.vite({ module: { type: 'es6' } })],
  test: {
    globals: true,
    pool: 'forks',
    // Most of a test's time is spent waiting on a broker, a timer or a socket, not on the CPU.
    maxWorkers: 4,
    execArgv: ['--expose-gc'],
    testTimeout: 30_000,
    // Cleanup hooks list leftovers with rabbitmqctl, an Erlang VM per call: slow while both legs run.
    hookTimeout: 60_000,
    reporters: ['default', './test/support/summary-reporter.mjs'],
    onUnhandledError: isNestRmqServerCloseRace,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.spec.ts'], sequence: { groupOrder: 0 } } },
      {
        extends: true,
        test: {
          name: 'memory',
          include: BEHAVIOUR_SUITE,
          exclude: RABBITMQ_ONLY,
          env: { TEST_TRANSPORT: 'memory' },
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          name: 'rabbitmq',
          include: BEHAVIOUR_SUITE,
          exclude: SERIAL_ON_RABBITMQ,
          env: { TEST_TRANSPORT: 'rabbitmq' },
          sequence: { groupOrder: 0 },
          globalSetup: ['test/support/broker-facts.ts'],
        },
      },
      {
        extends: true,
        test: {
          name: 'faults',
          include: [...FAULTS, ...SERIAL_ON_RABBITMQ],
          fileParallelism: false,
          env: { TEST_TRANSPORT: 'rabbitmq' },
          sequence: { groupOrder: 1 },
          globalSetup: ['test/support/global-setup.mjs'],
        },
      },
      ...CLUSTER,
    ],
  },
});
