import { MemoryBroker } from './memory-broker';

/**
 * Brokers by name, on globalThis: the package ships CommonJS and ESM builds, and a process that
 * loads both must still see one broker per `memory://<name>`.
 */
const REGISTRY = Symbol.for('nestjs-messaging.memory-brokers');

type Registry = Map<string, MemoryBroker>;

export class MemoryUrlError extends Error {
  constructor(url: string) {
    super(`Not a memory broker URL: "${url}" (expected memory:// or memory://<name>)`);
    this.name = 'MemoryUrlError';
  }
}

function registry(): Registry {
  const holder = globalThis as { [REGISTRY]?: Registry };
  return (holder[REGISTRY] ??= new Map());
}

/** `memory://` is the broker named "default"; `memory://<name>` the one named after the host. */
export function memoryBrokerName(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new MemoryUrlError(url);
  }
  if (parsed.protocol !== 'memory:') throw new MemoryUrlError(url);
  return parsed.hostname || 'default';
}

/** The broker a `memory://` URL names, made on first use and kept for the life of the process. */
export function memoryBrokerFor(url: string): MemoryBroker {
  const name = memoryBrokerName(url);
  const brokers = registry();
  let broker = brokers.get(name);
  if (!broker) {
    broker = new MemoryBroker(name);
    brokers.set(name, broker);
  }
  return broker;
}
