import { constants as bufferLimits } from 'node:buffer';
import * as zlib from 'node:zlib';
import { DecodeError } from '../messaging.errors';

export type CompressionAlgorithm = 'gzip' | 'deflate' | 'br';
export const COMPRESSION_ALGORITHMS: readonly CompressionAlgorithm[] = ['gzip', 'deflate', 'br'];

/**
 * From this size of input on, (de)compression runs on libuv's thread pool instead of the event
 * loop. Measured (bench/compression-sync-async.js, JSON bodies): below it the synchronous call
 * costs less than the thread-pool round trip alone (gzip 1 KB: ~25 µs sync, ~110 µs async); above
 * it a synchronous call would stall every other message for milliseconds (gzip 1 MB: ~12 ms).
 */
export const OFF_LOOP_FROM_BYTES = 64 * 1024;

/** Brotli's default quality (11) takes seconds per megabyte; 4 compresses as fast as gzip, and smaller. */
const BROTLI_OPTIONS: zlib.BrotliOptions = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } };

type Options = zlib.ZlibOptions & zlib.BrotliOptions;
type Done = (error: Error | null, result: Buffer) => void;
interface Zlib {
  sync(body: Buffer, options: Options): Buffer;
  async(body: Buffer, options: Options, done: Done): void;
}

const COMPRESS: Record<CompressionAlgorithm, Zlib & { options: Options }> = {
  gzip: { sync: zlib.gzipSync, async: zlib.gzip, options: {} },
  deflate: { sync: zlib.deflateSync, async: zlib.deflate, options: {} },
  br: { sync: zlib.brotliCompressSync, async: zlib.brotliCompress, options: BROTLI_OPTIONS },
};

const INFLATE: Record<CompressionAlgorithm, Zlib> = {
  gzip: { sync: zlib.gunzipSync, async: zlib.gunzip },
  deflate: { sync: zlib.inflateSync, async: zlib.inflate },
  br: { sync: zlib.brotliDecompressSync, async: zlib.brotliDecompress },
};

/** zlib's code when the output passes maxOutputLength: it stops there, having allocated no more. */
const TOO_LARGE = 'ERR_BUFFER_TOO_LARGE';

export function compress(algorithm: CompressionAlgorithm, body: Buffer): Buffer | Promise<Buffer> {
  const { sync, async, options } = COMPRESS[algorithm];
  if (body.length < OFF_LOOP_FROM_BYTES) return sync(body, options);
  return new Promise((resolve, reject) => async(body, options, (error, compressed) => (error ? reject(error) : resolve(compressed))));
}

/** The algorithm a content-encoding names, if it is one we inflate; anything else (e.g. a charset some clients put there) leaves the body as it is. */
export function algorithmOf(contentEncoding: string): CompressionAlgorithm | undefined {
  const name = contentEncoding.trim().toLowerCase();
  return (COMPRESSION_ALGORITHMS as readonly string[]).includes(name) ? (name as CompressionAlgorithm) : undefined;
}

/**
 * Inflates a body, never past `maxBytes` (a decompression bomb is stopped there, not allocated).
 * gzip and deflate expand at most ~1,000-fold, so a small body inflates on the event loop, which
 * costs less than parsing what it yields; brotli has no such bound (1 GB fits in 1 KB, and refusing
 * it takes ~100 ms), so it always inflates off the loop, like any large body. `onLoop` inflates
 * every body on the event loop, for callers that need the answer now (test inspection).
 */
export function decompress(algorithm: CompressionAlgorithm, body: Buffer, maxBytes: number, onLoop = false): Buffer | Promise<Buffer> {
  const options = { maxOutputLength: Math.min(maxBytes, bufferLimits.MAX_LENGTH) };
  if (onLoop || (algorithm !== 'br' && body.length < OFF_LOOP_FROM_BYTES)) {
    try {
      return INFLATE[algorithm].sync(body, options);
    } catch (error) {
      throw decompressError(algorithm, error, maxBytes);
    }
  }
  return new Promise((resolve, reject) => {
    INFLATE[algorithm].async(body, options, (error, inflated) =>
      error ? reject(decompressError(algorithm, error, maxBytes)) : resolve(inflated),
    );
  });
}

function decompressError(algorithm: CompressionAlgorithm, error: unknown, maxBytes: number): DecodeError {
  if ((error as { code?: unknown }).code === TOO_LARGE) {
    return new DecodeError(`The ${algorithm} body inflates to more than maxMessageBytes (${maxBytes})`);
  }
  return new DecodeError(`The body is not valid ${algorithm} data: ${(error as Error).message}`);
}
