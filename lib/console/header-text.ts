import { cutText, visibleText } from './visible-text';

/** Characters of one header value (or name) shown; the rest is cut. */
export const MAX_HEADER_CHARS = 1024;

/**
 * A header value as text: strings as they are, numbers and booleans written out, tables and
 * arrays (e.g. RabbitMQ's `x-death`) as JSON with bytes in hex and dates in ISO form; cut to
 * MAX_HEADER_CHARS, marked with an ellipsis, invisible characters written out.
 */
export function headerText(value: unknown): string {
  const shown = cutText(typeof value === 'string' ? value : asJson(value), MAX_HEADER_CHARS);
  return visibleText(shown.text) + (shown.cut ? '…' : '');
}

function asJson(value: unknown): string {
  if (value === undefined) return '';
  return (
    JSON.stringify(value, (_key, item: unknown) => {
      if (typeof item === 'bigint') return item.toString();
      // JSON.stringify has already turned a Buffer into { type, data } by its toJSON.
      if (isSerializedBuffer(item)) return Buffer.from(item.data).toString('hex');
      return item;
    }) ?? String(value)
  );
}

function isSerializedBuffer(item: unknown): item is { type: 'Buffer'; data: number[] } {
  return (
    typeof item === 'object' &&
    item !== null &&
    (item as { type?: unknown }).type === 'Buffer' &&
    Array.isArray((item as { data?: unknown }).data)
  );
}
