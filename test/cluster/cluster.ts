/**
 * The throwaway cluster of cluster.sh as the cluster tests see it: its nodes' URLs, stopping and
 * starting a node, and rabbitmqctl on one node (never the machine's main broker).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const SCRIPT = join(process.cwd(), 'test/cluster/cluster.sh');

export type NodeNumber = 1 | 2 | 3;

/** The AMQP port of node `n` (cluster.sh: 5790 + n). */
export function nodePort(n: NodeNumber): number {
  return 5790 + n;
}

export function nodeUrl(n: NodeNumber): string {
  return `amqp://guest:guest@127.0.0.1:${nodePort(n)}`;
}

async function cluster(...args: string[]): Promise<string> {
  const { stdout } = await run(SCRIPT, args, { timeout: 90_000 });
  return stdout;
}

export const stopNode = (n: NodeNumber) => cluster('stop-node', String(n));
export const startNode = (n: NodeNumber) => cluster('start-node', String(n));
export const ctl = (n: NodeNumber, ...args: string[]) => cluster('ctl', String(n), ...args);

/** How many of the cluster's nodes are running, as node `from` sees it. */
export async function runningNodes(from: NodeNumber): Promise<number> {
  return Number((await ctl(from, 'eval', 'length(rabbit_nodes:all_running()).')).trim());
}

export interface ClusterConnection {
  pid: string;
  /** The connection_name the module sets: `<serviceName>:<role>`. */
  name: string;
  /** The node's AMQP port it is connected to (5791-5793). */
  port: number;
}

/** Every named connection, on every node, as node `from` lists them. */
export async function connections(from: NodeNumber): Promise<ClusterConnection[]> {
  const out = await ctl(from, 'list_connections', 'pid', 'port', 'client_properties');
  const found: ClusterConnection[] = [];
  for (const line of out.split('\n')) {
    const [pid, port] = line.split('\t');
    const name = /\{"connection_name","([^"]*)"\}/.exec(line)?.[1];
    if (pid?.startsWith('<') && name) found.push({ pid, name, port: Number(port) });
  }
  return found;
}

/** Closes the connections named `name`, as an operator would; returns how many. */
export async function closeConnections(from: NodeNumber, name: string, reason: string): Promise<number> {
  const targets = (await connections(from)).filter((c) => c.name === name);
  for (const { pid } of targets) await ctl(from, 'close_connection', pid, reason);
  return targets.length;
}

export interface QuorumQueueState {
  type: string;
  /** Nodes holding a replica, and those of them running. */
  members: string[];
  online: string[];
}

/** Type and replicas of each queue whose name starts with `prefix`. */
export async function queueStates(from: NodeNumber, prefix: string): Promise<Map<string, QuorumQueueState>> {
  const out = await ctl(from, 'list_queues', 'name', 'type', 'members', 'online');
  const states = new Map<string, QuorumQueueState>();
  const nodes = (field = '') => field.match(/[\w-]+@[\w.-]+/g) ?? [];
  for (const line of out.split('\n')) {
    const [name, type, members, online] = line.split('\t');
    if (name?.startsWith(prefix)) states.set(name, { type, members: nodes(members), online: nodes(online) });
  }
  return states;
}
