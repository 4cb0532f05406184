import type * as amqp from 'amqplib';
import type { Readable, Writable } from 'node:stream';
import { channelStreamsOf } from './amqplib-socket';
import { amqplibShortcuts } from './amqplib-shortcuts';

/**
 * amqplib puts every frame a channel sends (publishes, acks, its methods) in a stream of that
 * channel's own, and a multiplexer copies those streams to the socket in a later setImmediate:
 * per write, a stream write, three ticks and an immediate, and the frame leaves one loop phase
 * later. When nothing of the channel waits in that stream and the socket takes data, the frames
 * go to the socket at once instead: in the same order (nothing of the channel is queued ahead of
 * them), and whole (amqplib hands a message's frames over in one chunk, or, for a large body, in
 * chunks written one after another in the same call; frames of other channels may come between
 * them, as the protocol allows). Otherwise they take amqplib's way, with its backpressure (the
 * channel's 'drain') as before. Where the internals are missing, amqplib's way throughout.
 */
export function writeDirectly(channel: amqp.Channel): void {
  const streams = amqplibShortcuts.directWrites ? channelStreamsOf(channel) : undefined;
  if (!streams) return;
  const { frames, socket } = streams;
  const queue = frames.write;
  frames.write = function directWrite(this: Writable, chunk: unknown, ...rest: unknown[]) {
    if (nothingQueued(frames) && socket.writable && !socket.writableNeedDrain) {
      socket.write(chunk as Buffer);
      return true;
    }
    return (queue as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
  } as Writable['write'];
}

function nothingQueued(frames: Writable): boolean {
  return frames.writableLength === 0 && (frames as Writable & Partial<Readable>).readableLength === 0 && !frames.writableEnded;
}
