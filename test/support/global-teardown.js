/**
 * Safety net after the whole run: deletes any queue or exchange a test created (names start with
 * "t-") and left behind, e.g. after a failed assertion skipped its own cleanup.
 */
const { execFileSync } = require('node:child_process');
const amqp = require('amqplib');

module.exports = async function globalTeardown() {
  const list = (what) =>
    execFileSync('rabbitmqctl', ['-q', `list_${what}`, 'name'], { encoding: 'utf8' })
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.startsWith('t-'));
  let queues = [];
  let exchanges = [];
  try {
    queues = list('queues');
    exchanges = list('exchanges');
  } catch {
    return; // rabbitmqctl unavailable: nothing to clean with
  }
  if (queues.length + exchanges.length === 0) return;
  const connection = await amqp.connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
  const channel = await connection.createChannel();
  for (const q of queues) await channel.deleteQueue(q);
  for (const e of exchanges) await channel.deleteExchange(e);
  await connection.close();
  console.warn(`global teardown removed ${queues.length} queues and ${exchanges.length} exchanges left by tests: ${[...queues, ...exchanges].join(", ")}`);
};
