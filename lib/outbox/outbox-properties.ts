import type { PublishProperties } from '../transport/outgoing';

/**
 * The properties of an outbox row as `jsonb` can hold them, and back, so that the relay publishes
 * exactly what `send` would have. Plain JSON is kept as it is (rows written before this encoding
 * read the same); what JSON loses or PostgreSQL refuses becomes an object tagged with TAG:
 * - a string with a NUL character or a lone surrogate (jsonb refuses both, in keys too; such a
 *   header can come from the handled message, through its TrackContext or its message id):
 *   its UTF-8 bytes, which is what the wire gets;
 * - a Buffer (`JSON.stringify` makes it `{ type, data }`), a Date (an ISO string), a number JSON
 *   has no literal for (NaN, Infinity: `null`);
 * - an object with such a key, or with TAG as a key (which would otherwise read as a tag).
 */
const TAG = '$outbox';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

export function encodeProperties(properties: PublishProperties): Json {
  return encode(properties);
}

export function decodeProperties(stored: Json): PublishProperties {
  return decode(stored) as PublishProperties;
}

function encode(value: unknown): Json {
  switch (typeof value) {
    case 'string':
      return storable(value) ? value : { [TAG]: 'string', base64: Buffer.from(value, 'utf8').toString('base64') };
    case 'number':
      return Number.isFinite(value) ? value : { [TAG]: 'number', value: String(value) };
    case 'boolean':
      return value;
    case 'object':
      return value === null ? null : encodeObject(value);
    default:
      // undefined (and what has no JSON form): left out, as JSON.stringify and amqplib do.
      return null;
  }
}

function encodeObject(value: object): Json {
  if (Buffer.isBuffer(value)) return { [TAG]: 'bytes', base64: value.toString('base64') };
  if (value instanceof Date) return { [TAG]: 'date', ms: value.getTime() };
  if (Array.isArray(value)) return value.map(encode);
  const entries = Object.entries(value).filter(([, item]) => item !== undefined);
  if (entries.every(([key]) => key !== TAG && storable(key))) return Object.fromEntries(entries.map(([key, item]) => [key, encode(item)]));
  return { [TAG]: 'table', entries: entries.map(([key, item]) => [encode(key), encode(item)]) };
}

function decode(value: Json): unknown {
  if (Array.isArray(value)) return value.map(decode);
  if (typeof value !== 'object' || value === null) return value;
  if (!Object.prototype.hasOwnProperty.call(value, TAG)) return decodeEntries(Object.entries(value));
  const { base64, ms, entries } = value as { base64: string; ms: number; entries: Array<[Json, Json]> };
  switch (value[TAG]) {
    case 'string':
      return Buffer.from(base64, 'base64').toString('utf8');
    case 'number':
      return Number(value.value);
    case 'bytes':
      return Buffer.from(base64, 'base64');
    case 'date':
      return new Date(ms);
    default:
      return decodeEntries(entries.map(([key, item]) => [decode(key) as string, item]));
  }
}

/** A plain object, built without `__proto__` or other keys reaching an object's machinery. */
function decodeEntries(entries: Array<[string, Json]>): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  for (const [key, item] of entries)
    Object.defineProperty(result, key, { value: decode(item), enumerable: true, writable: true, configurable: true });
  return result;
}

/** What jsonb refuses in a string: NUL, and a surrogate that is not half of a pair (invalid Unicode). */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this looks for
const UNSTORABLE = /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

function storable(text: string): boolean {
  return !UNSTORABLE.test(text);
}
