/**
 * The rabbitmqctl of the broker under test, and that broker's Erlang VM. The machine may run more
 * than one node (its RabbitMQ 3.10 on 5672, the RabbitMQ 4 node of test/rabbitmq4 on 5673), each
 * with a rabbitmqctl of its own: the one used is the one whose node listens on the URL's port, so
 * that the broker CPU (cpu.ts), the final sweep and S9's counts all look at the broker measured.
 * The runner picks it (`--rabbitmqctl`, else $RABBITMQCTL, else `rabbitmqctl`, else
 * test/rabbitmq4/rabbitmqctl) and hands it to the children as BENCH_RABBITMQCTL.
 */
import { spawnSync, type SpawnSyncReturns } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';

/** The rabbitmqctl the runner picked (in a child), or the default one. */
export function ctlPath(): string {
  return process.env.BENCH_RABBITMQCTL || process.env.RABBITMQCTL || 'rabbitmqctl';
}

export function runCtl(args: string[], timeoutMs = 60_000, ctl = ctlPath()): SpawnSyncReturns<string> {
  return spawnSync(ctl, args, { encoding: 'utf8', timeout: timeoutMs });
}

export interface BrokerVm {
  /** the rabbitmqctl that answers for the broker of the URL; undefined when none does */
  ctl?: string;
  /** the node's OS pid, for its CPU time; only for a broker on this machine (or BENCH_BROKER_PID) */
  pid?: string;
  /** what `rabbitmqctl status` says, e.g. "RabbitMQ 4.0.5 on Erlang/OTP 27 [erts-15.2.7.1]" */
  status?: string;
  /** why there is no ctl or pid */
  note?: string;
}

interface Status {
  pid?: number | string;
  rabbitmq_version?: string;
  erlang_version?: string;
  listeners?: Array<{ port?: number | string; protocol?: string }>;
}

function statusOf(ctl: string): Status | undefined {
  const r = runCtl(['status', '--formatter', 'json'], 60_000, ctl);
  if (r.status !== 0) return undefined;
  try {
    const start = r.stdout.indexOf('{');
    return JSON.parse(r.stdout.slice(start)) as Status;
  } catch {
    return undefined;
  }
}

function portOf(url: string): number {
  const u = new URL(url);
  return Number(u.port) || (u.protocol === 'amqps:' ? 5671 : 5672);
}

const isLocal = (url: string) => ['127.0.0.1', 'localhost', '[::1]', '::1'].includes(new URL(url).hostname);

/**
 * Finds the rabbitmqctl whose node has an AMQP listener on the URL's port (the first that does of
 * `given`, or of $RABBITMQCTL, `rabbitmqctl` and test/rabbitmq4/rabbitmqctl), and its VM's pid.
 */
export function findBrokerVm(url: string, root: string, given?: string): BrokerVm {
  const port = portOf(url);
  const local = isLocal(url);
  const candidates = given
    ? [given]
    : [...new Set([process.env.RABBITMQCTL, 'rabbitmqctl', path.join(root, 'test/rabbitmq4/rabbitmqctl')].filter((c): c is string => !!c))];
  const tried: string[] = [];
  for (const ctl of candidates) {
    if (ctl.includes('/') && !fs.existsSync(ctl)) continue;
    const s = statusOf(ctl);
    const ports = (s?.listeners ?? []).filter((l) => l.protocol === 'amqp' || l.protocol === 'amqp/ssl').map((l) => Number(l.port));
    tried.push(`${ctl} (${s ? `amqp on ${ports.join(', ') || 'none'}` : 'no answer'})`);
    // A remote broker: a local node listening on the same port is another broker.
    if (!s || !local || !ports.includes(port)) continue;
    const status = `RabbitMQ ${s.rabbitmq_version ?? '?'} on ${(s.erlang_version ?? '?').replace(/ \[(source|64-bit|smp|ds|async-threads|jit).*$/, '')}`;
    const pid = process.env.BENCH_BROKER_PID || (s.pid !== undefined ? String(s.pid) : undefined);
    return { ctl, pid, status, note: pid ? undefined : 'rabbitmqctl status gave no OS pid' };
  }
  const why = !local
    ? `the broker is not on this machine (${new URL(url).hostname})`
    : `no rabbitmqctl answered for a node listening on port ${port}: tried ${tried.join('; ') || 'none'}`;
  // Remote: --rabbitmqctl may still reach it for the sweep, and BENCH_BROKER_PID may name a VM.
  return { ctl: given && !local ? given : undefined, pid: process.env.BENCH_BROKER_PID, note: why };
}
