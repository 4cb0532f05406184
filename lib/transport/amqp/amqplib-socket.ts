import type { Socket } from 'node:net';
import type * as amqp from 'amqplib';

/**
 * amqplib's socket under a connection, if it is there: an internal of amqplib (its connection's
 * `stream`), reached for write coalescing and for dropping a connection the broker no longer
 * answers. Callers do without it when it is missing (tested in amqplib-internals.spec.ts).
 */
export function socketOf(connection: amqp.ChannelModel): Socket | undefined {
  const socket = (connection as unknown as { connection?: { stream?: Socket } }).connection?.stream;
  return typeof socket?.write === 'function' && typeof socket.cork === 'function' && typeof socket.destroy === 'function'
    ? socket
    : undefined;
}
