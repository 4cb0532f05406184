import type { CodecRegistry, Encoded } from '../codec/codec-registry';
import { EncodeError } from '../messaging.errors';
import { type Outgoing, type PublishJob, target } from '../transport/outgoing';

/**
 * Encodes a publish's payload only when it may be written, so the confirm window bounds the
 * encoded bytes too, and a buffered publish costs its payload, not its bytes.
 */
export class LazyEncoder {
  constructor(
    private readonly codecs: CodecRegistry,
    /** Called when an encoding that ran off the event loop is done: the job can go now. */
    private readonly onEncoded: () => void,
  ) {}

  /**
   * Whether the job's bytes are ready (or it is known to be unencodable: it fails when written).
   * False while its compression runs off the event loop: it stays first in line, which keeps the
   * publish order, until `onEncoded`.
   */
  ready(job: PublishJob): boolean {
    const { message } = job;
    if (message.content !== undefined || job.unencodable) return true;
    if (job.encoding) return false;
    let encoded: Encoded | Promise<Encoded>;
    try {
      encoded = this.codecs.encode(message.payload, message.properties.contentType);
    } catch (error) {
      job.unencodable = unencodable(message, error);
      return true;
    }
    if (!(encoded instanceof Promise)) {
      useEncoded(message, encoded);
      return true;
    }
    job.encoding = true;
    encoded
      .then(
        (bytes) => useEncoded(message, bytes),
        (error: unknown) => (job.unencodable = unencodable(message, error)),
      )
      .finally(() => {
        job.encoding = false;
        this.onEncoded();
      });
    return false;
  }
}

function useEncoded(message: Outgoing, encoded: Encoded): void {
  message.content = encoded.content;
  message.properties.contentType ??= encoded.contentType;
  if (encoded.contentEncoding) message.properties.contentEncoding = encoded.contentEncoding;
  message.payload = undefined; // the bytes are what is kept from now on
}

function unencodable(message: Outgoing, error: unknown): EncodeError {
  return new EncodeError(`Cannot encode the message for "${target(message)}": ${(error as Error)?.message ?? String(error)}`, {
    cause: error,
  });
}
