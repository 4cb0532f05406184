/**
 * One competing consumer instance of S8d, a process of its own: `node instance.js '<json spec>'`.
 * Consumes the queue with the impl's adapter and reports over IPC how many it handled and when it
 * handled the last one (on the clock every process of the machine shares), until told to close.
 */
import type { Adapter } from '../impl/types';
import { peakRssMB } from '../scenarios';
import { InstanceReport, InstanceSpec, sharedClock } from './instances';

const REPORT_EVERY_MS = 25;

async function main(): Promise<void> {
  const spec: InstanceSpec = JSON.parse(process.argv[2]);
  const send = (m: InstanceReport) => process.send!(m);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const adapter: Adapter = require(`../impl/${spec.impl}`).create();
  let handled = 0;
  let last = 0;
  await adapter.setup({
    url: spec.url,
    queue: spec.queue,
    prefetch: spec.prefetch,
    rpc: false,
    handler: () => {
      handled++;
      last = sharedClock();
    },
    persistent: false,
    noDelay: true,
    variant: 'plain',
  });
  let reported = 0;
  const timer = setInterval(() => {
    if (handled === reported) return;
    reported = handled;
    send({ type: 'progress', handled, last });
  }, REPORT_EVERY_MS);
  process.once('message', async () => {
    clearInterval(timer);
    await adapter.close();
    process.send!({ type: 'closed', handled, last, peakRssMB: peakRssMB() } satisfies InstanceReport, () => process.exit(0));
  });
  send({ type: 'ready' });
}

// An instance must not outlive the measurement that started it (e.g. a child killed on timeout).
process.on('disconnect', () => process.exit(1));
main().catch((err) =>
  process.send!({ type: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) } satisfies InstanceReport, () =>
    process.exit(1),
  ),
);
