/**
 * The broker's admin tool, for the tests and the soak alike: what they list, and the memory
 * watermark they raise and always put back.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The broker's rabbitmqctl; RABBITMQCTL names another node's, e.g. test/rabbitmq4/rabbitmqctl. */
export const RABBITMQCTL = process.env.RABBITMQCTL ?? 'rabbitmqctl';

export async function rabbitmqctl(...args: string[]): Promise<string> {
  const { stdout } = await run(RABBITMQCTL, ['-q', ...args], { timeout: 60_000 });
  return stdout;
}

export interface BrokerConnection {
  pid: string;
  /** The connection_name client property (the module sets `<serviceName>:<role>`). */
  name: string;
  /** running, blocking, blocked (a resource alarm holds its publishes), ... */
  state: string;
}

/** Every connection that carries a connection_name. */
export async function listConnections(): Promise<BrokerConnection[]> {
  const out = await rabbitmqctl('list_connections', 'pid', 'state', 'client_properties');
  const found: BrokerConnection[] = [];
  for (const line of out.split('\n')) {
    const pid = /^(<[^>]+>)/.exec(line)?.[1];
    const name = /\{"connection_name","([^"]*)"\}/.exec(line)?.[1];
    if (pid && name) found.push({ pid, name, state: line.split('\t')[1] ?? '' });
  }
  return found;
}

/** The current vm_memory_high_watermark as arguments that set it back, e.g. ['0.4'] or ['absolute', '1073741824']. */
export async function readWatermark(): Promise<string[]> {
  const raw = (await rabbitmqctl('eval', 'vm_memory_monitor:get_vm_memory_high_watermark().')).trim();
  const absolute = /^\{absolute,\s*(\d+)\}$/.exec(raw);
  if (absolute) return ['absolute', absolute[1]];
  if (/^\d+(\.\d+)?$/.test(raw)) return [raw];
  throw new Error(`Cannot parse vm_memory_high_watermark "${raw}"`);
}

export async function setWatermark(args: string[]): Promise<void> {
  await rabbitmqctl('set_vm_memory_high_watermark', ...args);
}

/**
 * Whether the broker denies a deprecated feature, as RabbitMQ 4.3 does by default (and the node of
 * test/rabbitmq4 by configuration); false on a broker without deprecated features (before 3.13).
 */
export function deniesFeature(feature: string): Promise<boolean> {
  return asked(`denies ${feature}`, () => askDeniesFeature(feature));
}

async function askDeniesFeature(feature: string): Promise<boolean> {
  const out = await rabbitmqctl(
    'eval',
    `case code:ensure_loaded(rabbit_deprecated_features) of {module, _} -> rabbit_deprecated_features:is_permitted(${feature}); _ -> true end.`,
  );
  // The first look on a node also prints the feature's deprecation warning, before or after the answer.
  const answer = out
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line === 'true' || line === 'false')
    .pop();
  if (answer === undefined) throw new Error(`rabbitmqctl eval gave no answer for ${feature}: ${out}`);
  return answer === 'false';
}

/** The broker's major version, e.g. 3 or 4. */
export function brokerMajorVersion(): Promise<number> {
  return asked('major version', async () =>
    Number.parseInt(lastLine(await rabbitmqctl('eval', 'rabbit_misc:version().')).replace(/"/g, ''), 10),
  );
}

/**
 * Facts of the node that do not change while tests run, asked once per process: every rabbitmqctl
 * call starts an Erlang VM, which took over a test's 30 s on a loaded CI machine (both legs at once).
 */
const facts = new Map<string, Promise<unknown>>();

function asked<T>(fact: string, ask: () => Promise<T>): Promise<T> {
  let answer = facts.get(fact) as Promise<T> | undefined;
  if (!answer) {
    answer = ask();
    // A failed look is asked again next time, not remembered.
    answer.catch(() => facts.delete(fact));
    facts.set(fact, answer);
  }
  return answer;
}

function lastLine(output: string): string {
  return output.trim().split('\n').pop()!.trim();
}
