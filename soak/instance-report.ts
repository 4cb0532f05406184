/** What an instance has to tell the driver since its last flush, shared by its handlers and producers. */
import type { Batch } from './protocol';

let batch = emptyBatch();

function emptyBatch(): Batch {
  return {
    type: 'batch',
    confirmed: [],
    rejected: [],
    handled: [],
    failed: [],
    dropped: [],
    outbox: [],
    requests: { answered: 0, failed: {} },
    missingExchange: {},
    counters: {},
  };
}

/** The batch being filled (read it anew for each record: a flush replaces it). */
export function report(): Batch {
  return batch;
}

/** Adds one to a counter of the batch. */
export function count(into: Record<string, number>, key: string): void {
  into[key] = (into[key] ?? 0) + 1;
}

/** Sends what was recorded to the driver and starts a new batch. */
export function flush(): Promise<void> {
  const out = batch;
  batch = emptyBatch();
  return new Promise((resolve) => process.send!(out, () => resolve()));
}

export function errorName(error: unknown): string {
  return error instanceof Error ? error.constructor.name : `non-error ${typeof error}`;
}

export function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (the soak driver starts this process)`);
  return value;
}
