import * as amqp from 'amqplib';
import type { ConnectOptions, Transport, TransportConnection } from '../transport.interface';
import { AmqpConnection } from './amqp-connection';
import { HandshakeRefusedError } from '../transport.errors';
import { handshakeRefusal } from './handshake-refusal';

/** RabbitMQ over amqplib, for `amqp://` and `amqps://` URLs. */
export const amqpTransport: Transport = {
  async connect(url: string, options: ConnectOptions): Promise<TransportConnection> {
    const target = new URL(url);
    if (!target.searchParams.has('heartbeat')) target.searchParams.set('heartbeat', String(options.heartbeatSeconds));
    let model: amqp.ChannelModel;
    try {
      model = await amqp.connect(target.toString(), {
        noDelay: true, // Nagle + delayed ACK turns every sequential RPC into ~40 ms
        timeout: options.timeoutMs,
        clientProperties: { connection_name: options.connectionName },
        ...options.tls,
      });
    } catch (error) {
      const refused = handshakeRefusal(error);
      throw refused ? new HandshakeRefusedError(refused, (error as Error).message, { cause: error }) : error;
    }
    return new AmqpConnection(model);
  },
};
