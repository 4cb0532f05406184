import { EventEmitter } from 'node:events';
import type { TransportChannel, TransportConnection } from '../transport.interface';
import type { MemoryBroker } from './memory-broker';
import { MemoryChannel } from './memory-channel';
import { BrokerClosedConnectionError } from './refusals';

/** As `rabbitmqctl close_connection` would: AMQP 320. */
export class ConnectionForcedError extends BrokerClosedConnectionError {
  constructor() {
    super(320, 'CONNECTION-FORCED', 'CONNECTION_FORCED - Closed via management plugin');
    this.name = 'ConnectionForcedError';
  }
}

/** An operation on a connection that is already closed. */
export class ConnectionClosedError extends Error {
  constructor() {
    super('Connection closed');
    this.name = 'ConnectionClosedError';
  }
}

/** A connection to a memory broker. Closing it closes its channels and deletes its exclusive queues. */
export class MemoryConnection extends EventEmitter implements TransportConnection {
  private readonly channels = new Set<MemoryChannel>();
  private closed = false;

  constructor(
    private readonly broker: MemoryBroker,
    readonly connectionName: string,
  ) {
    super();
    broker.attach(this);
  }

  openChannels(): Iterable<MemoryChannel> {
    return this.channels;
  }

  async createChannel(options: { confirms?: boolean } = {}): Promise<TransportChannel> {
    if (this.closed) throw new ConnectionClosedError();
    const channel = new MemoryChannel(this, this.broker, options.confirms ?? false);
    this.channels.add(channel);
    return channel;
  }

  async close(): Promise<void> {
    if (this.closed) throw new ConnectionClosedError();
    this.shutdown(undefined);
  }

  destroy(reason: Error): void {
    this.shutdown(reason);
  }

  closedByBroker(error: BrokerClosedConnectionError = new ConnectionForcedError()): void {
    this.shutdown(error);
  }

  channelClosed(channel: MemoryChannel): void {
    this.channels.delete(channel);
  }

  /** A consumer callback threw: amqplib would fail the connection's frame loop; here it is reported. */
  reportError(error: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else
      process.nextTick(() => {
        throw error;
      });
  }

  private shutdown(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    for (const channel of [...this.channels]) channel.teardown();
    this.broker.detach(this);
    this.emit('close', error);
  }
}
