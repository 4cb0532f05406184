import { CodecRegistry, type Encoded } from '../../lib/codec/codec-registry';

/** The codecs of a module without `codecs` or `compression` options, for unit specs. */
export function encode(payload: unknown): Encoded {
  return new CodecRegistry([], undefined, Infinity).encode(payload) as Encoded;
}

export function decode(content: Buffer, contentType: string | undefined, maxBytes: number): unknown {
  return new CodecRegistry([], undefined, maxBytes).decode(content, contentType);
}
