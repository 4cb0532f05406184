import { TextDecoder } from 'node:util';
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON } from '../messaging.constants';
import { DecodeError } from '../messaging.errors';
import type { RegisteredCodec } from '../interfaces/codec.interface';
import { stripPrototypeKeys } from './prototype-keys';
import { CLOUD_EVENTS_CONTENT_TYPE } from './cloud-events';
import { bodyBytes } from './body-slab';

const CONTENT_TYPE_TEXT = 'text/plain';

/** The default: everything but Buffers. Bodies are data, never code (see stripPrototypeKeys). */
export const JSON_CODEC: RegisteredCodec = {
  contentType: CONTENT_TYPE_JSON,
  // undefined has no JSON form; a handler returning nothing replies null.
  encode: (value) => bodyBytes(JSON.stringify(value === undefined ? null : value)),
  decode(body) {
    const text = body.toString('utf8');
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      throw new DecodeError(`The body is not valid JSON: ${(error as Error).message}`);
    }
    return stripPrototypeKeys(value, text);
  },
};

/** Raw bytes, what a Buffer payload travels as: a `Buffer` to the handler. */
export const BYTES_CODEC: RegisteredCodec = {
  contentType: CONTENT_TYPE_BINARY,
  encode(value) {
    if (Buffer.isBuffer(value)) return value;
    if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    throw new TypeError(`${CONTENT_TYPE_BINARY} takes a Buffer or a typed array (got ${typeof value})`);
  },
  decode: (body) => body,
};

/** A string, sent as UTF-8 and read in the charset the content type names (UTF-8 when none). */
export const TEXT_CODEC: RegisteredCodec = {
  contentType: CONTENT_TYPE_TEXT,
  encode(value) {
    if (typeof value !== 'string') throw new TypeError(`${CONTENT_TYPE_TEXT} takes a string (got ${typeof value})`);
    return bodyBytes(value);
  },
  decode(body, contentType) {
    const charset = contentType === undefined ? undefined : charsetOf(contentType);
    let decoder: TextDecoder;
    try {
      decoder = new TextDecoder(charset ?? 'utf-8');
    } catch {
      throw new DecodeError(`Cannot decode text in charset "${String(charset).slice(0, 40)}"`);
    }
    return decoder.decode(body);
  },
};

/** A CloudEvent in structured mode: the whole event as JSON (the consumer takes its data out, see cloud-events.ts). */
export const CLOUD_EVENTS_CODEC: RegisteredCodec = { ...JSON_CODEC, contentType: CLOUD_EVENTS_CONTENT_TYPE };

export const BUILT_IN_CODECS: readonly RegisteredCodec[] = [JSON_CODEC, BYTES_CODEC, TEXT_CODEC, CLOUD_EVENTS_CODEC];

function charsetOf(contentType: string): string | undefined {
  const [, ...parameters] = contentType.split(';');
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=');
    if (name.trim().toLowerCase() === 'charset' && value !== undefined) return value.trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}
