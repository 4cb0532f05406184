import type { Socket } from 'node:net';
import type { Writable } from 'node:stream';
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

/** What one channel writes through: its own stream of frames in amqplib, and the socket under both. */
export interface ChannelStreams {
  /** The channel's frame stream, which amqplib's multiplexer copies to the socket. */
  frames: Writable;
  socket: Socket;
}

/**
 * An amqplib channel's frame stream (`connection.channels[ch].buffer`) and socket, if they are
 * there: internals of amqplib, reached for direct writes (direct-writes.ts). Callers do without
 * them when missing (tested in amqplib-internals.spec.ts).
 */
export function channelStreamsOf(channel: amqp.Channel): ChannelStreams | undefined {
  const { connection, ch } = channel as unknown as {
    connection?: { stream?: Socket; channels?: Array<{ buffer?: Writable } | null> };
    ch?: number;
  };
  const frames = typeof ch === 'number' ? connection?.channels?.[ch]?.buffer : undefined;
  const socket = connection?.stream;
  if (typeof frames?.write !== 'function' || typeof frames.writableLength !== 'number') return undefined;
  if (typeof socket?.write !== 'function' || typeof socket.writableNeedDrain !== 'boolean') return undefined;
  return { frames, socket };
}
