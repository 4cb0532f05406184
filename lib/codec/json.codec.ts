import { TextDecoder } from 'node:util';
import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON } from '../messaging.constants';
import { DecodeError } from '../messaging.errors';
import { stripPrototypeKeys } from './prototype-keys';

export interface Encoded {
  content: Buffer;
  contentType: string;
}

const CONTENT_TYPE_TEXT = 'text/plain';

/** JSON for everything but Buffers, which travel as raw bytes. */
export function encode(payload: unknown): Encoded {
  if (Buffer.isBuffer(payload)) return { content: payload, contentType: CONTENT_TYPE_BINARY };
  // undefined has no JSON form; a handler returning nothing replies null.
  const text = JSON.stringify(payload === undefined ? null : payload);
  return { content: Buffer.from(text), contentType: CONTENT_TYPE_JSON };
}

type Decoder = (content: Buffer, charset: string | undefined) => unknown;

/** By media type: JSON, bytes (`Buffer`) and text (`string`); a body without a content type is JSON. */
const DECODERS = new Map<string, Decoder>([
  [CONTENT_TYPE_JSON, (content) => decodeJson(content)],
  [CONTENT_TYPE_BINARY, (content) => content],
  [CONTENT_TYPE_TEXT, decodeText],
]);

/** Turns a body back into a payload, by its content type (`type/subtype; charset=...`). */
export function decode(content: Buffer, contentType: string | undefined, maxBytes: number): unknown {
  if (content.length > maxBytes) {
    throw new DecodeError(`The body has ${content.length} bytes, more than maxMessageBytes (${maxBytes})`);
  }
  if (contentType === undefined) return decodeJson(content);
  const [mediaType, ...parameters] = contentType.split(';');
  const decoder = DECODERS.get(mediaType.trim().toLowerCase());
  if (!decoder) throw new DecodeError(`Cannot decode content type "${contentType.slice(0, 100)}"`);
  return decoder(content, charsetOf(parameters));
}

/** Bodies are data, never code: keys that could reach a prototype are dropped (see stripPrototypeKeys). */
function decodeJson(content: Buffer): unknown {
  const text = content.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DecodeError(`The body is not valid JSON: ${(error as Error).message}`);
  }
  return stripPrototypeKeys(value, text);
}

function decodeText(content: Buffer, charset = 'utf-8'): string {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(charset);
  } catch {
    throw new DecodeError(`Cannot decode text in charset "${charset.slice(0, 40)}"`);
  }
  return decoder.decode(content);
}

function charsetOf(parameters: string[]): string | undefined {
  for (const parameter of parameters) {
    const [name, value] = parameter.split('=');
    if (name.trim().toLowerCase() === 'charset' && value !== undefined) return value.trim().replace(/^"(.*)"$/, '$1');
  }
  return undefined;
}
