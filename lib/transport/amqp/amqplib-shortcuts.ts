/**
 * The three places the module reaches past amqplib's public API for speed: frames written through
 * a channel's private sendMessage (wire.ts, writeMessage), a channel's frames written to the socket
 * at once rather than through amqplib's multiplexer (direct-writes.ts), and a socket's writes
 * coalesced per tick (write-coalescing.ts). All are on; each falls back to the public path by
 * itself where amqplib changed. Not exported: the benchmark turns each off (BENCH_OURS_AMQPLIB) to
 * measure what it buys.
 */
export const amqplibShortcuts = { frameWriter: true, directWrites: true, coalesceWrites: true };
