import fc from 'fast-check';
import { bodyBytes } from '../../lib/codec/body-slab';

/** Node's shared pool: what a short `Buffer.from(text)` slices. */
const NODE_POOL_BYTES = Buffer.poolSize;

describe('bodyBytes', () => {
  it('gives the UTF-8 bytes of any text, as Buffer.from does (lone surrogates included)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 3000 }), (text) => {
        expect(bodyBytes(text).equals(Buffer.from(text, 'utf8'))).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });

  it('never lets one body overwrite another: every body still holds its bytes after many more were cut', () => {
    fc.assert(
      fc.property(fc.array(fc.string({ unit: 'grapheme', maxLength: 2000 }), { minLength: 1, maxLength: 200 }), (texts) => {
        const bodies = texts.map((text) => bodyBytes(text));
        texts.forEach((text, i) => expect(bodies[i].toString('utf8')).toBe(text));
      }),
      { numRuns: 300 },
    );
  });

  it('cuts short bodies from slabs of its own, not from Node’s shared pool', () => {
    const body = bodyBytes(JSON.stringify({ id: 1, pad: 'x'.repeat(1000) }));
    const pooled = Buffer.from(JSON.stringify({ id: 1 }));
    expect(pooled.buffer.byteLength).toBe(NODE_POOL_BYTES);
    expect(body.buffer).not.toBe(pooled.buffer);
    expect(body.buffer.byteLength).toBe(32 * 1024);
    expect(body.byteOffset % 8).toBe(0);
  });

  it('gives a body of 4 KiB or more memory of its own (Node 24 would pool it up to 32 KiB), and cuts a shorter one with a long text from a slab', () => {
    const long = bodyBytes('y'.repeat(5000));
    expect(long.buffer.byteLength).toBe(5000);
    // 1,500 units could take 4,500 bytes, but take 1,500: still cut from a slab, not Node's pool.
    const mid = bodyBytes('z'.repeat(1500));
    expect(mid.buffer.byteLength).toBe(32 * 1024);
    expect(mid.toString()).toBe('z'.repeat(1500));
  });
});
