import { CONTENT_TYPE_BINARY, CONTENT_TYPE_JSON } from '../messaging.constants';
import { DecodeError } from '../messaging.errors';

export interface Encoded {
  content: Buffer;
  contentType: string;
}

/** JSON for everything but Buffers, which travel as raw bytes. */
export function encode(payload: unknown): Encoded {
  if (Buffer.isBuffer(payload)) return { content: payload, contentType: CONTENT_TYPE_BINARY };
  // undefined has no JSON form; a handler returning nothing replies null.
  const text = JSON.stringify(payload === undefined ? null : payload);
  return { content: Buffer.from(text), contentType: CONTENT_TYPE_JSON };
}

/**
 * Turns a body back into a payload. Bodies are data, never code: keys that could reach an
 * object's prototype when user code merges the payload (`__proto__`, `constructor.prototype`)
 * are dropped. The check costs one substring scan and only walks the object when one is named.
 */
export function decode(content: Buffer, contentType: string | undefined, maxBytes: number): unknown {
  if (content.length > maxBytes) {
    throw new DecodeError(`The body has ${content.length} bytes, more than maxMessageBytes (${maxBytes})`);
  }
  if (contentType === CONTENT_TYPE_BINARY) return content;
  if (contentType !== undefined && contentType !== CONTENT_TYPE_JSON && !contentType.startsWith(`${CONTENT_TYPE_JSON};`)) {
    throw new DecodeError(`Cannot decode content type "${contentType.slice(0, 100)}"`);
  }
  const text = content.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new DecodeError(`The body is not valid JSON: ${(error as Error).message}`);
  }
  if (text.includes('__proto__') || text.includes('constructor')) stripPrototypeKeys(value);
  return value;
}

function stripPrototypeKeys(value: unknown): void {
  const stack = [value];
  while (stack.length > 0) {
    const node = stack.pop();
    if (typeof node !== 'object' || node === null) continue;
    if (Object.prototype.hasOwnProperty.call(node, '__proto__')) delete (node as Record<string, unknown>)['__proto__'];
    const ctor = (node as Record<string, unknown>)['constructor'];
    if (Object.prototype.hasOwnProperty.call(node, 'constructor') && typeof ctor === 'object' && ctor !== null && 'prototype' in ctor) {
      delete (node as Record<string, unknown>)['constructor'];
    }
    for (const key of Object.keys(node)) stack.push((node as Record<string, unknown>)[key]);
  }
}
