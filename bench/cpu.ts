/**
 * CPU time spent over a measured window, per message: by this process (producer and consumer both
 * run here) and by the broker's Erlang VM. On a 2-core machine the two compete for the same cores,
 * so throughput alone hides which side a change made cheaper; these say where the time went.
 */
import * as fs from 'fs';

/** The broker's OS process, when it runs on this machine (runner.ts finds it; see brokerPid()). */
const BROKER_PID = Number(process.env.BENCH_BROKER_PID) || 0;
const CLOCK_TICK_US = 10_000; // USER_HZ is 100 on Linux

/** utime + stime of a process in µs, from /proc/<pid>/stat (fields 14 and 15). */
function procCpuUs(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // field 3 onwards
    return (Number(fields[11]) + Number(fields[12])) * CLOCK_TICK_US;
  } catch {
    return undefined;
  }
}

export interface CpuPerOp {
  /** µs of this process's CPU (user + system) per operation */
  nodeCpuUs: number;
  /** µs of the broker's CPU per operation; absent when the broker is not a local process */
  brokerCpuUs?: number;
}

/** Starts measuring; call the returned function with the number of operations at the end. */
export function cpuMeter(): (ops: number) => CpuPerOp {
  const node0 = process.cpuUsage();
  const broker0 = BROKER_PID ? procCpuUs(BROKER_PID) : undefined;
  return (ops) => {
    const node = process.cpuUsage(node0);
    const broker1 = broker0 === undefined ? undefined : procCpuUs(BROKER_PID);
    const result: CpuPerOp = { nodeCpuUs: (node.user + node.system) / ops };
    if (broker0 !== undefined && broker1 !== undefined) result.brokerCpuUs = (broker1 - broker0) / ops;
    return result;
  };
}
