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

/** The deprecated features the tests ask about (RabbitMQ 4.3 denies all three by default). */
const FEATURES = ['transient_nonexcl_queues', 'global_qos', 'classic_queue_mirroring'] as const;
export type DeprecatedFeature = (typeof FEATURES)[number];

/** What the tests ask of the node, none of which changes while they run. */
export interface BrokerFacts {
  majorVersion: number;
  /** Features it denies: none before 3.13, which has no deprecated features. */
  denied: DeprecatedFeature[];
}

/**
 * Where the run's global setup (broker-facts.ts) leaves the facts for every test file, so that
 * they are asked once per run: every rabbitmqctl call starts an Erlang VM, and with both CI legs
 * running one took longer than a test's 30 s.
 */
export const BROKER_FACTS_ENV = 'NM_TEST_BROKER_FACTS';

/** The facts in one rabbitmqctl call. */
export async function askBrokerFacts(): Promise<BrokerFacts> {
  const out = await rabbitmqctl(
    'eval',
    `Denied = case code:ensure_loaded(rabbit_deprecated_features) of
       {module, _} -> [F || F <- [${FEATURES.join(', ')}], not rabbit_deprecated_features:is_permitted(F)];
       _ -> []
     end,
     io:format("facts ~s ~s~n", [rabbit_misc:version(), lists:join(",", [atom_to_list(F) || F <- Denied])]).`,
  );
  // The first look at a denied feature also logs its deprecation, around the answer.
  const answer = /^facts (\d+)\.\S* ?(.*)$/m.exec(out);
  if (!answer) throw new Error(`rabbitmqctl eval gave no broker facts: ${out}`);
  const denied = answer[2].trim().split(',').filter(Boolean) as DeprecatedFeature[];
  return { majorVersion: Number(answer[1]), denied };
}

let facts: Promise<BrokerFacts> | undefined;

function brokerFacts(): Promise<BrokerFacts> {
  if (!facts) {
    const given = process.env[BROKER_FACTS_ENV];
    facts = given ? Promise.resolve(JSON.parse(given) as BrokerFacts) : askBrokerFacts();
    // A failed look is asked again next time, not remembered.
    facts.catch(() => (facts = undefined));
  }
  return facts;
}

/**
 * Whether the broker denies a deprecated feature, as RabbitMQ 4.3 does by default (and the node of
 * test/rabbitmq4 by configuration); false on a broker without deprecated features (before 3.13).
 */
export async function deniesFeature(feature: DeprecatedFeature): Promise<boolean> {
  return (await brokerFacts()).denied.includes(feature);
}

/** The broker's major version, e.g. 3 or 4. */
export async function brokerMajorVersion(): Promise<number> {
  return (await brokerFacts()).majorVersion;
}
