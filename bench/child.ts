/**
 * One measurement in a fresh process: `node child.js '<json spec>'`. Reports through IPC and exits.
 */
import { Broker, runQueues } from './broker';
import { SCENARIOS } from './scenarios';
import { POINT_SCENARIOS } from './growth';
import { S11 } from './s11-outbox';
import { Adapter } from './impl/types';

export interface ChildSpec {
  scenario: string;
  entry: string;
  url: string;
  queue: string;
  quick: boolean;
}

export interface ChildResult {
  ok: boolean;
  /** the Node this child ran on (runner.ts's --node) */
  node: string;
  metrics?: Record<string, number>;
  error?: string;
  unhandled: number;
  uncaught: number;
}

let unhandled = 0;
let uncaught = 0;
process.on('unhandledRejection', (reason) => {
  unhandled++;
  console.error('[unhandledRejection]', reason);
});
process.on('uncaughtException', (err) => {
  uncaught++;
  console.error('[uncaughtException]', err);
});

async function main(): Promise<ChildResult> {
  const spec: ChildSpec = JSON.parse(process.argv[2]);
  const scenario = [...SCENARIOS, ...S11, ...POINT_SCENARIOS].find((s) => s.id === spec.scenario);
  const entry = scenario?.entries.find((e) => e.id === spec.entry);
  if (!scenario || !entry) throw new Error(`unknown run ${spec.scenario}/${spec.entry}`);
  const broker = await Broker.connect(spec.url);
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const adapter: Adapter = require(`./impl/${entry.impl === 'nest' ? 'nest-rmq' : entry.impl}`).create();
    const metrics = await scenario.run({
      adapter,
      broker,
      url: spec.url,
      queue: spec.queue,
      entry,
      quick: spec.quick,
      unhandled: () => unhandled,
    });
    return { ok: true, node: process.version, metrics, unhandled, uncaught };
  } finally {
    await broker.deleteQueues(runQueues(spec.queue));
    await broker.close();
  }
}

main()
  .catch((err): ChildResult => ({
    ok: false,
    node: process.version,
    error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    unhandled,
    uncaught,
  }))
  .then((result) => process.send!(result, () => process.exit(0)));
