/**
 * The bytes of an encoded body, cut from slabs that only bodies share.
 *
 * Why not `Buffer.from(text)`: up to half its size it slices Node's shared pool (8 KiB on Node 20
 * and 22, 64 KiB on Node 24), which also holds short-lived buffers (amqplib's frames among them).
 * A body is kept until the broker confirms it (a channel lost before then writes it again), long
 * enough to outlive two young-generation collections under load; it is then promoted, and keeps
 * its whole pool slab, frames included, until the next full collection. Measured in the
 * benchmark's S1 (1 KB bodies, 1,000 unconfirmed): external memory at peak 26-33 MB with Node's
 * pool, 10-20 MB with these slabs.
 * Cutting here costs no more than Node's pool (one UTF-8 write; short texts need no length pass
 * first); a body of its own memory per message would cost a microsecond more each.
 */

/** Slab size: a body that outlives its neighbours (a message parked in the in-memory broker) keeps at most this. */
const SLAB_BYTES = 32 * 1024;
/** Larger bodies get memory of their own (an allocation costs little next to encoding that much). */
const MAX_PIECE_BYTES = 4 * 1024;
/** UTF-8 takes at most 3 bytes per UTF-16 code unit. */
const MAX_UTF8_PER_UNIT = 3;

let slab: Buffer | undefined;
let offset = SLAB_BYTES;

/** `text` as UTF-8 bytes. */
export function bodyBytes(text: string): Buffer {
  let room = text.length * MAX_UTF8_PER_UNIT;
  if (room > MAX_PIECE_BYTES) {
    room = Buffer.byteLength(text, 'utf8');
    if (room >= MAX_PIECE_BYTES) {
      const own = Buffer.allocUnsafeSlow(room);
      own.write(text);
      return own;
    }
  }
  if (!slab || room > SLAB_BYTES - offset) {
    slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
    offset = 0;
  }
  const length = slab.write(text, offset);
  const bytes = Buffer.from(slab.buffer, offset, length);
  // 8-byte aligned, as Node's pool keeps its slices.
  offset = (offset + length + 7) & ~7;
  return bytes;
}
