import { EventEmitter } from 'node:events';
import type * as amqp from 'amqplib';
import type { TransportChannel, TransportConnection } from '../transport.interface';
import { AmqpChannel } from './amqp-channel';
import { socketOf } from './amqplib-socket';
import { coalesceWrites } from './write-coalescing';
import { writeDirectly } from './direct-writes';

/** An amqplib connection as a TransportConnection; its events pass through as they are. */
export class AmqpConnection extends EventEmitter implements TransportConnection {
  constructor(private readonly model: amqp.ChannelModel) {
    super();
    coalesceWrites(model);
    model.on('error', (error: Error) => this.emit('error', error));
    model.on('blocked', (reason: string) => this.emit('blocked', reason));
    model.on('unblocked', () => this.emit('unblocked'));
    model.on('close', (error?: Error) => this.emit('close', error));
  }

  async createChannel(options: { confirms?: boolean } = {}): Promise<TransportChannel> {
    const channel = options.confirms ? await this.model.createConfirmChannel() : await this.model.createChannel();
    writeDirectly(channel);
    return new AmqpChannel(channel);
  }

  async close(): Promise<void> {
    await this.model.close();
  }

  /** With an error, so amqplib ends the connection too (its heartbeat timer, its channels). */
  destroy(reason: Error): void {
    socketOf(this.model)?.destroy(reason);
  }
}
