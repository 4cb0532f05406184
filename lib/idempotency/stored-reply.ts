import type { CodecRegistry, Encoded } from '../codec/codec-registry';

/**
 * A handler's reply as an idempotency store keeps it: the bytes its codec made, behind one JSON
 * line with their content type and encoding, so a duplicate request is answered with the same
 * value (a Buffer stays a Buffer, a custom codec's type stays its type), whatever store holds it.
 */
export async function packReply(codecs: CodecRegistry, reply: unknown): Promise<Buffer> {
  const encoded = await codecs.encode(reply);
  const head = JSON.stringify([encoded.contentType, encoded.contentEncoding ?? null]);
  return Buffer.concat([Buffer.from(`${head}\n`), encoded.content]);
}

export async function unpackReply(codecs: CodecRegistry, stored: Buffer): Promise<unknown> {
  const end = stored.indexOf(0x0a);
  const [contentType, contentEncoding] = JSON.parse(stored.subarray(0, end).toString()) as [Encoded['contentType'], string | null];
  return codecs.decode(stored.subarray(end + 1), contentType, contentEncoding ?? undefined);
}
