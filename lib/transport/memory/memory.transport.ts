import type { ConnectOptions, Transport, TransportConnection } from '../transport.interface';
import { memoryBrokerFor } from './broker-registry';
import { MemoryConnection } from './memory-connection';

export { memoryBrokerFor, MemoryUrlError } from './broker-registry';
export type { BrokerStats, MemoryBroker, PublishRecord } from './memory-broker';
export { ConnectionForcedError } from './memory-connection';

/** An in-process broker with RabbitMQ's semantics, for `memory://` URLs: tests and demos without RabbitMQ. */
export const memoryTransport: Transport = {
  async connect(url: string, options: ConnectOptions): Promise<TransportConnection> {
    const broker = memoryBrokerFor(url);
    // Connecting is never synchronous on a real broker either.
    await new Promise((resolve) => setImmediate(resolve));
    return new MemoryConnection(broker, options.connectionName);
  },
};
