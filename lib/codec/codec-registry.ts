import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON } from '../messaging.constants';
import { DecodeError } from '../messaging.errors';
import { BUILT_IN_CODECS } from './built-in-codecs';
import type { Codec, RegisteredCodec } from '../interfaces/codec.interface';
import { algorithmOf, type CompressionAlgorithm, compress, decompress } from './compression';

/** A payload as it goes on the wire. */
export interface Encoded {
  content: Buffer;
  contentType: string;
  /** Set when the body was compressed. */
  contentEncoding?: CompressionAlgorithm;
}

export interface ResolvedCompression {
  algorithm: CompressionAlgorithm;
  thresholdBytes: number;
}

/**
 * The codecs of one module, by media type: the built-in JSON, bytes and text, then the app's own
 * (which may replace a built-in one), and the compression bodies get on the way out. Created once
 * from the options (see resolveOptions); every publisher and consumer of the module uses it.
 */
export class CodecRegistry {
  private readonly byType = new Map<string, RegisteredCodec>();
  private readonly json: RegisteredCodec;
  private readonly bytes: RegisteredCodec;

  constructor(
    codecs: readonly Codec[],
    private readonly compression: ResolvedCompression | undefined,
    /** maxMessageBytes: the largest body accepted, before and after inflating. */
    private readonly maxBytes: number,
  ) {
    for (const codec of [...BUILT_IN_CODECS, ...codecs]) this.byType.set(mediaType(codec.contentType), codec);
    this.json = this.byType.get(CONTENT_TYPE_JSON)!;
    this.bytes = this.byType.get(CONTENT_TYPE_BINARY)!;
  }

  /**
   * Bytes for a payload: with the codec of `contentType` when given; otherwise JSON, or bytes for
   * a Buffer. Compressed when the module's compression says so: a promise then if that runs off the
   * event loop (large bodies, see compression.ts). Throws when there is no codec, it fails, or the
   * body is larger than maxMessageBytes.
   */
  encode(payload: unknown, contentType?: string): Encoded | Promise<Encoded> {
    const codec = contentType === undefined ? (Buffer.isBuffer(payload) ? this.bytes : this.json) : this.find(contentType);
    if (!codec) throw new TypeError(`No codec for content type "${contentType!.slice(0, 100)}" (see the codecs option)`);
    const content = codec.encode(payload);
    if (!Buffer.isBuffer(content)) throw new TypeError(`The codec of ${codec.contentType} returned no Buffer`);
    // Before compressing too: a handler refuses a body that inflates past the limit.
    this.bounded(content);
    const { compression } = this;
    if (!compression || content.length < compression.thresholdBytes) return { content, contentType: codec.contentType };
    const { algorithm } = compression;
    const compressed = compress(algorithm, content);
    if (compressed instanceof Promise)
      return compressed.then((body) => ({ content: this.bounded(body), contentType: codec.contentType, contentEncoding: algorithm }));
    return { content: this.bounded(compressed), contentType: codec.contentType, contentEncoding: algorithm };
  }

  /**
   * A body no handler of this module would accept (as received or once inflated) is refused before
   * it is written: RabbitMQ 4 closes the channel on one over its max_message_size (16 MiB by
   * default, as maxMessageBytes), which would fail the publishes in flight beside it too.
   */
  private bounded(body: Buffer): Buffer {
    if (body.length <= this.maxBytes) return body;
    throw new RangeError(
      `its body has ${body.length} bytes, more than maxMessageBytes (${this.maxBytes}; RabbitMQ 4 refuses bodies over its max_message_size, 16 MiB by default)`,
    );
  }

  /**
   * A body's payload, by its content type (none: JSON), inflated first when its content-encoding
   * is gzip, deflate or br. A promise only when inflating runs off the event loop (brotli, large
   * bodies; never with `onLoop`). Throws, or rejects, with DecodeError: such a message can never be handled.
   */
  decode(content: Buffer, contentType?: string, contentEncoding?: string, onLoop = false): unknown {
    if (content.length > this.maxBytes) {
      throw new DecodeError(`The body has ${content.length} bytes, more than maxMessageBytes (${this.maxBytes})`);
    }
    const codec = contentType === undefined ? this.json : this.find(contentType);
    if (!codec) throw new DecodeError(`Cannot decode content type "${contentType!.slice(0, 100)}"`);
    const algorithm = contentEncoding === undefined ? undefined : algorithmOf(contentEncoding);
    if (algorithm === undefined) return read(codec, content, contentType);
    const inflated = decompress(algorithm, content, this.maxBytes, onLoop);
    return inflated instanceof Promise ? inflated.then((body) => read(codec, body, contentType)) : read(codec, inflated, contentType);
  }

  /** By the exact content type first: the common case (`application/json`) costs one look-up, no parsing. */
  private find(contentType: string): RegisteredCodec | undefined {
    return this.byType.get(contentType) ?? this.byType.get(mediaType(contentType));
  }
}

/** `Type/Subtype; charset=...` -> `type/subtype`. */
export function mediaType(contentType: string): string {
  const end = contentType.indexOf(';');
  return (end < 0 ? contentType : contentType.slice(0, end)).trim().toLowerCase();
}

/** A codec's failure is the message's: wrapped as DecodeError, it is dead-lettered at once instead of retried. */
function read(codec: RegisteredCodec, body: Buffer, contentType: string | undefined): unknown {
  try {
    return codec.decode(body, contentType);
  } catch (error) {
    if (error instanceof DecodeError) throw error;
    throw new DecodeError(`The ${codec.contentType} codec cannot decode the body: ${(error as Error)?.message ?? String(error)}`, {
      cause: error,
    });
  }
}
