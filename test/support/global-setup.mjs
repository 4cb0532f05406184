/**
 * Safety net after the whole run: deletes any queue or exchange a test created (names start with
 * "t-") and left behind, e.g. after a failed assertion skipped its own cleanup. Outside CI it only
 * lists them, since other test runs may be using the same broker at the same time.
 */
import { execFileSync } from 'node:child_process';
import amqp from 'amqplib';

/** Vitest global setup: nothing before the run; the returned function runs after it. */
export default function setup() {
  return globalTeardown;
}

async function globalTeardown() {
  const list = (what) =>
    execFileSync(process.env.RABBITMQCTL ?? 'rabbitmqctl', ['-q', `list_${what}`, 'name'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.startsWith('t-'));
  let queues;
  let exchanges;
  try {
    queues = list('queues');
    exchanges = list('exchanges');
  } catch {
    return; // rabbitmqctl unavailable: nothing to clean with
  }
  if (queues.length + exchanges.length === 0) return;
  if (!process.env.CI) {
    console.warn(`left on the broker by tests (or by a run in progress): ${[...queues, ...exchanges].join(', ')}`);
    return;
  }
  const connection = await amqp.connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  const channel = await connection.createChannel();
  for (const q of queues) await channel.deleteQueue(q);
  for (const e of exchanges) await channel.deleteExchange(e);
  await connection.close();
  console.warn(
    `global teardown removed ${queues.length} queues and ${exchanges.length} exchanges left by tests: ${[...queues, ...exchanges].join(', ')}`,
  );
}
