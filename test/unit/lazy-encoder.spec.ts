import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import { CodecRegistry } from '../../lib/codec/codec-registry';
import { OFF_LOOP_FROM_BYTES } from '../../lib/codec/compression';
import type { Codec } from '../../lib/interfaces/codec.interface';
import { EncodeError } from '../../lib/messaging.errors';
import { LazyEncoder } from '../../lib/publisher/lazy-encoder';
import type { PublishJob } from '../../lib/transport/outgoing';

function job(payload: unknown, options: { contentType?: string; exchange?: string; routingKey?: string } = {}): PublishJob {
  const { contentType, exchange = 'orders', routingKey = 'order.placed' } = options;
  return {
    message: { exchange, routingKey, payload, properties: { messageId: 'm1', ...(contentType === undefined ? {} : { contentType }) } },
    deadline: Infinity,
    settle: () => undefined,
    seq: 0,
    returned: false,
  };
}

/** A codec that counts its calls, to see when the encoder runs one. */
function countingCodec() {
  const codec: Codec & { calls: number } = {
    contentType: 'application/x-count',
    calls: 0,
    encode(value) {
      codec.calls++;
      return Buffer.from(String(value));
    },
    decode: (body) => body.toString(),
  };
  return codec;
}

const MAX_BYTES = 16 * 1024 * 1024;
const noCompression = (codecs: Codec[] = []) => new CodecRegistry(codecs, undefined, MAX_BYTES);
const gzip = (maxBytes = MAX_BYTES) => new CodecRegistry([], { algorithm: 'gzip', thresholdBytes: 100 }, maxBytes);

describe('LazyEncoder', () => {
  describe('on the event loop', () => {
    it('encodes the payload when asked, keeps the bytes and drops the payload', () => {
      const encoder = new LazyEncoder(noCompression(), () => undefined);
      const j = job({ id: 1 });
      expect(encoder.ready(j)).toBe(true);
      expect(j.message.content?.toString()).toBe('{"id":1}');
      expect(j.message.properties.contentType).toBe('application/json');
      expect(j.message.properties.contentEncoding).toBeUndefined();
      expect(j.message.payload).toBeUndefined();
      expect(j.unencodable).toBeUndefined();
      expect(j.encoding).toBeUndefined();
    });

    it.each<[string, string | undefined, string, unknown]>([
      ['a Buffer, as bytes', undefined, 'application/octet-stream', Buffer.from([1, 2])],
      ['a string with text/plain', 'text/plain', 'text/plain', 'hé'],
      // The caller's content type is kept as given, parameters and case included.
      ['JSON with parameters', 'Application/JSON; charset=utf-8', 'Application/JSON; charset=utf-8', { a: 1 }],
    ])('encodes %s: content type %s -> %s', (_label, contentType, expected, payload) => {
      const j = job(payload, { contentType });
      expect(new LazyEncoder(noCompression(), () => undefined).ready(j)).toBe(true);
      expect(j.message.properties.contentType).toBe(expected);
      expect(j.message.content).toBeInstanceOf(Buffer);
    });

    it('compresses a body past the threshold and says so in contentEncoding', () => {
      const payload = { text: 'x'.repeat(1_000) };
      const j = job(payload);
      expect(new LazyEncoder(gzip(), () => undefined).ready(j)).toBe(true);
      expect(j.message.properties.contentEncoding).toBe('gzip');
      expect(JSON.parse(gunzipSync(j.message.content!).toString())).toEqual(payload);
    });

    it('does not encode a job twice, nor a message that came as bytes', () => {
      const codec = countingCodec();
      const encoder = new LazyEncoder(noCompression([codec]), () => undefined);
      const j = job('v', { contentType: codec.contentType });
      expect(encoder.ready(j)).toBe(true);
      expect(encoder.ready(j)).toBe(true);
      expect(codec.calls).toBe(1);
      const bytes = job('ignored', { contentType: codec.contentType });
      bytes.message.content = Buffer.from('as is');
      expect(encoder.ready(bytes)).toBe(true);
      expect(codec.calls).toBe(1);
      expect(bytes.message.content.toString()).toBe('as is');
    });

    it.each<[string, () => PublishJob, string, ErrorConstructor]>([
      [
        'a circular payload',
        () => {
          const circular: Record<string, unknown> = {};
          circular.self = circular;
          return job(circular);
        },
        'Cannot encode the message for "orders": ',
        TypeError,
      ],
      ['a content type without a codec', () => job('x', { contentType: 'application/x-none' }), 'No codec for content type', TypeError],
      ['a payload the codec refuses', () => job(42, { contentType: 'text/plain' }), 'text/plain takes a string', TypeError],
    ])('marks %s unencodable (ready: it fails when its turn comes), with the cause', (_label, make, message, cause) => {
      const j = make();
      expect(new LazyEncoder(noCompression(), () => undefined).ready(j)).toBe(true);
      expect(j.unencodable).toBeInstanceOf(EncodeError);
      expect(j.unencodable?.message).toContain(message);
      expect(j.unencodable?.cause).toBeInstanceOf(cause);
      expect(j.message.content).toBeUndefined();
    });

    it('names the queue when the message goes to one directly, through the default exchange', () => {
      const j = job(undefined, { exchange: '', routingKey: 'billing', contentType: 'text/plain' });
      new LazyEncoder(noCompression(), () => undefined).ready(j);
      expect(j.unencodable?.message).toMatch(/^Cannot encode the message for "billing": /);
    });

    it('refuses a body larger than maxMessageBytes before it is written', () => {
      const j = job('x'.repeat(20));
      new LazyEncoder(new CodecRegistry([], undefined, 10), () => undefined).ready(j);
      expect(j.unencodable).toBeInstanceOf(EncodeError);
      expect(j.unencodable?.cause).toBeInstanceOf(RangeError);
      expect(j.unencodable?.message).toContain('more than maxMessageBytes (10');
    });

    it('an unencodable job is ready at once, without encoding again', () => {
      const codec = countingCodec();
      const encoder = new LazyEncoder(noCompression([codec]), () => undefined);
      const j = job('x', { contentType: codec.contentType });
      j.unencodable = new EncodeError('earlier');
      expect(encoder.ready(j)).toBe(true);
      expect(codec.calls).toBe(0);
    });
  });

  describe('off the event loop (compression of a large body)', () => {
    /** Runs `ready` on a job whose compression goes to the thread pool, and waits for `onEncoded`. */
    async function encodeOffLoop(registry: CodecRegistry, j: PublishJob) {
      let onEncoded!: () => void;
      const done = new Promise<void>((resolve) => (onEncoded = resolve));
      const encoder = new LazyEncoder(registry, () => onEncoded());
      const first = encoder.ready(j);
      const state = { encoding: j.encoding, again: encoder.ready(j) };
      await done;
      return { first, state, after: encoder.ready(j) };
    }

    it('is not ready while compressing (keeping its place in line), then ready with the compressed bytes', async () => {
      const payload = { text: 'y'.repeat(OFF_LOOP_FROM_BYTES) };
      const j = job(payload);
      const { first, state, after } = await encodeOffLoop(gzip(), j);
      expect(first).toBe(false);
      expect(state).toEqual({ encoding: true, again: false }); // asked again meanwhile: still waiting, not a second encoding
      expect(after).toBe(true);
      expect(j.encoding).toBe(false);
      expect(j.message.properties.contentEncoding).toBe('gzip');
      expect(j.message.payload).toBeUndefined();
      expect(JSON.parse(gunzipSync(j.message.content!).toString())).toEqual(payload);
    });

    it('marks the job unencodable when the compressed body is over maxMessageBytes', async () => {
      // Random bytes do not compress: gzip's output is a little larger than its input.
      const body = randomBytes(OFF_LOOP_FROM_BYTES);
      const j = job(body);
      const { first, after } = await encodeOffLoop(gzip(body.length), j);
      expect(first).toBe(false);
      expect(after).toBe(true);
      expect(j.encoding).toBe(false);
      expect(j.unencodable).toBeInstanceOf(EncodeError);
      expect(j.unencodable?.message).toContain('more than maxMessageBytes');
      expect(j.message.content).toBeUndefined();
    });
  });
});
