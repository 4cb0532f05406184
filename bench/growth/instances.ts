/**
 * S8d: competing consumer instances, each a process of its own (instance.ts) on one queue, fed by
 * one producer (this process, with the same impl's adapter consuming nothing).
 */
import { ChildProcess, fork } from 'child_process';
import * as path from 'path';
import { RunContext, closeBounded, publishAll, setupOptions } from '../scenarios';

export interface InstanceSpec {
  impl: 'raw' | 'ours';
  url: string;
  queue: string;
  prefetch: number;
}

export type InstanceReport =
  | { type: 'ready' }
  | { type: 'progress'; handled: number; last: number }
  | { type: 'closed'; handled: number; last: number; peakRssMB: number }
  | { type: 'error'; error: string };

/** ms since the epoch with sub-ms resolution, comparable between processes */
export const sharedClock = () => performance.timeOrigin + performance.now();

const CLOSE_TIMEOUT_MS = 20_000;

export class InstanceFailedError extends Error {}

class Instance {
  handled = 0;
  last = 0;
  peakRssMB = NaN;
  readonly ready: Promise<void>;
  /** rejects when the instance fails or exits before it was told to close */
  readonly failed: Promise<never>;
  private readonly proc: ChildProcess;
  private closing = false;
  private onClosed?: () => void;

  constructor(spec: InstanceSpec, onProgress: () => void) {
    this.proc = fork(path.join(__dirname, 'instance.js'), [JSON.stringify(spec)], {
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let ready!: () => void;
    let fail!: (e: Error) => void;
    this.ready = new Promise((resolve) => (ready = resolve));
    this.failed = new Promise((_, reject) => (fail = reject));
    this.failed.catch(() => undefined); // awaited through ready/close races only
    this.proc.on('message', (m: InstanceReport) => {
      if (m.type === 'ready') ready();
      else if (m.type === 'error') fail(new InstanceFailedError(`consumer instance failed: ${m.error}`));
      else {
        this.handled = m.handled;
        this.last = m.last;
        if (m.type === 'closed') {
          this.peakRssMB = m.peakRssMB;
          this.onClosed?.();
        }
        onProgress();
      }
    });
    this.proc.on('exit', (code, signal) => {
      if (!this.closing) fail(new InstanceFailedError(`consumer instance exited with ${signal ?? code}`));
    });
  }

  /** Closes its adapter (a graceful shutdown) and waits for its last report. */
  close(): Promise<void> {
    this.closing = true;
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new InstanceFailedError('consumer instance did not close in time')), CLOSE_TIMEOUT_MS);
      this.onClosed = () => (clearTimeout(timer), resolve());
      this.proc.send('close');
    });
  }

  kill(): void {
    this.closing = true;
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

export async function competingConsumers(
  ctx: RunContext,
  o: { instances: number; count: number; prefetch: number },
): Promise<Record<string, number>> {
  let allHandled!: () => void;
  const handledAll = new Promise<void>((r) => (allHandled = r));
  const spec: InstanceSpec = { impl: ctx.entry.impl as InstanceSpec['impl'], url: ctx.url, queue: ctx.queue, prefetch: o.prefetch };
  const instances: Instance[] = [];
  const onProgress = () => {
    if (instances.reduce((sum, i) => sum + i.handled, 0) >= o.count) allHandled();
  };
  for (let i = 0; i < o.instances; i++) instances.push(new Instance(spec, onProgress));
  const orFailure = <T>(p: Promise<T>) => Promise.race([p, ...instances.map((i) => i.failed)]);
  try {
    await orFailure(Promise.all(instances.map((i) => i.ready)));
    await ctx.adapter.setup({ ...setupOptions(ctx, { prefetch: o.prefetch, rpc: false, handler: () => undefined }), queues: [] });
    await ctx.broker.waitForConsumer(ctx.queue);
    const t0 = sharedClock();
    await publishAll(ctx.adapter, o.count);
    await orFailure(handledAll);
    const last = Math.max(...instances.map((i) => i.last));
    await closeBounded(ctx.adapter);
    await orFailure(Promise.all(instances.map((i) => i.close())));
    return {
      msgsPerSec: o.count / ((last - t0) / 1000),
      peakRssMB: Math.max(...instances.map((i) => i.peakRssMB)),
      handledMinShare: Math.min(...instances.map((i) => i.handled)) / (o.count / o.instances),
    };
  } finally {
    for (const i of instances) i.kill();
  }
}
