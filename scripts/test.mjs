#!/usr/bin/env node
/**
 * `npm test`: every test when RabbitMQ answers; without it, the unit tests and the behaviour
 * suite on the in-memory broker, and a loud list of what could not run and how to start a broker.
 * Arguments go to Vitest (e.g. a spec file, or `--project memory`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { connect } from 'node:net';

const url = new URL(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const port = Number(url.port || (url.protocol === 'amqps:' ? 5671 : 5672));
const args = process.argv.slice(2);

const reachable = await new Promise((resolve) => {
  const socket = connect({ host: url.hostname, port, timeout: 2_000 });
  const done = (ok) => {
    socket.destroy();
    resolve(ok);
  };
  socket.once('connect', () => done(true));
  socket.once('error', () => done(false));
  socket.once('timeout', () => done(false));
});

const without = reachable || args.includes('--project') ? [] : ['--project', 'unit', '--project', 'memory'];

/** The spec files only the `rabbitmq` project runs (see vitest.config.mts). */
function rabbitmqOnly() {
  const specs = (dir) =>
    readdirSync(dir, { withFileTypes: true })
      .filter((f) => f.isFile() && f.name.endsWith('.spec.ts'))
      .map((f) => `${dir}/${f.name}`);
  const folders = ['test/reliability', 'test/operations', 'test/persistence'].flatMap((dir) => {
    try {
      return specs(dir);
    } catch {
      return [];
    }
  });
  return [
    ...folders,
    'test/integration/amqplib-internals.spec.ts',
    'test/integration/scale-down.spec.ts',
    'test/integration/nest-rmq-interop.spec.ts',
  ];
}

const banner = () =>
  console.warn(
    [
      '',
      '='.repeat(100),
      `RabbitMQ is not reachable at ${url.hostname}:${port}: running the unit tests and the behaviour suite`,
      '(test/integration) on the in-memory broker only. NOT RUN, they need RabbitMQ:',
      '  - the behaviour suite once more, on RabbitMQ itself',
      ...rabbitmqOnly().map((file) => `  - ${file}`),
      'Start a broker and run `npm test` again to run everything:',
      '  sudo rabbitmq-server -detached        (Debian/Ubuntu package rabbitmq-server)',
      "  docker compose up -d rabbitmq          (this repository's docker-compose.yml)",
      '='.repeat(100),
      '',
    ].join('\n'),
  );

if (without.length > 0) banner();
let status = 0;
try {
  execFileSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...without, ...args], { stdio: 'inherit' });
} catch (error) {
  status = typeof error.status === 'number' ? error.status : 1;
}
if (without.length > 0) banner();
process.exit(status);
