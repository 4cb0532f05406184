import type { Socket } from 'node:net';
import type * as amqp from 'amqplib';
import { socketOf } from './amqplib-socket';
import { amqplibShortcuts } from './amqplib-shortcuts';

/**
 * amqplib writes every frame to the socket on its own: with TCP_NODELAY on (needed for RPC
 * latency) that is one syscall and one packet per frame. The first write of a tick goes out at
 * once (a lone request or reply pays nothing); from the second on, the socket is corked until the
 * next tick, so a burst of publishes and acks leaves in one writev. Where amqplib's socket cannot
 * be reached (see amqplib-socket.ts), writes go out one by one as amqplib makes them.
 */
export function coalesceWrites(connection: amqp.ChannelModel): void {
  const socket = amqplibShortcuts.coalesceWrites ? socketOf(connection) : undefined;
  if (!socket) return;
  const write = socket.write;
  let writes = 0;
  const endOfTick = () => {
    if (writes > 1) socket.uncork();
    writes = 0;
  };
  socket.write = function coalescedWrite(this: Socket, ...args: Parameters<Socket['write']>) {
    if (++writes === 1) process.nextTick(endOfTick);
    else if (writes === 2) socket.cork();
    return write.apply(this, args);
  } as Socket['write'];
}
