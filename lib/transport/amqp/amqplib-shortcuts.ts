/**
 * The two places the module reaches past amqplib's public API for speed: frames written through a
 * channel's private sendMessage (wire.ts, writeMessage) and a socket's writes coalesced per tick
 * (write-coalescing.ts). Both are on; each falls back to the public path by itself where amqplib
 * changed. Not exported: the benchmark turns each off (BENCH_OURS_AMQPLIB) to measure what it buys.
 */
export const amqplibShortcuts = { frameWriter: true, coalesceWrites: true };
