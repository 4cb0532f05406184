import type { Logger } from '@nestjs/common';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { ManagedConnection } from './managed-connection';

/**
 * Publishing and consuming use separate connections: a broker alarm blocks only publishing
 * connections, so consumers keep acking while publishers wait.
 */
export class ConnectionManager {
  readonly publisher: ManagedConnection;
  readonly consumer: ManagedConnection;
  private consumerStarted?: Promise<void>;

  constructor(options: ResolvedMessagingOptions, logger: Logger) {
    this.publisher = new ManagedConnection(options, 'publisher', logger);
    this.consumer = new ManagedConnection(options, 'consumer', logger);
  }

  /** The consumer connection opens only when the app has handlers. */
  startConsumer(): Promise<void> {
    return (this.consumerStarted ??= this.consumer.start());
  }

  get connected(): boolean {
    return this.publisher.current !== undefined && (!this.consumerStarted || this.consumer.current !== undefined);
  }

  /** Consumers first: their channels are closed by then, so their acks are flushed before the socket goes. */
  async close(): Promise<void> {
    await this.consumer.close();
    await this.publisher.close();
  }
}
