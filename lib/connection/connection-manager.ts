import type { Telemetry } from '../telemetry/telemetry.interface';
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

  constructor(
    options: Pick<ResolvedMessagingOptions, 'heartbeatSeconds' | 'reconnect' | 'serviceName' | 'tls' | 'urls'>,
    logger: Logger,
    telemetry: Telemetry,
  ) {
    this.publisher = new ManagedConnection(options, 'publisher', logger, telemetry);
    this.consumer = new ManagedConnection(options, 'consumer', logger, telemetry);
  }

  /** The consumer connection opens only when the app has handlers. */
  startConsumer(): Promise<void> {
    return (this.consumerStarted ??= this.consumer.start());
  }

  get connected(): boolean {
    return this.publisher.current !== undefined && (!this.consumerStarted || this.consumer.current !== undefined);
  }

  /**
   * Both at once: every channel is closed by then (the consumers' acks are flushed), so neither
   * waits for the other, and on a stalled socket shutdown waits for one close bound, not two.
   */
  async close(): Promise<void> {
    await Promise.all([this.consumer.close(), this.publisher.close()]);
  }
}
