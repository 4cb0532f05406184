import { isUtf8 } from 'node:buffer';
import { cutText, visibleText } from './visible-text';

/** Characters of a body shown on a page; the rest is cut, and its size said. */
export const MAX_BODY_CHARS = 16_384;
/** Bytes of a binary body shown in hex. */
export const MAX_HEX_BYTES = 1024;
/** Larger bodies are shown as text, not parsed and re-indented as JSON. */
const MAX_JSON_BYTES = 1024 * 1024;
/** Controls that make a body binary rather than text (tab and line breaks are text). */
// eslint-disable-next-line no-control-regex -- control characters are exactly what this looks for
const BINARY_CONTROLS = /[\u0000-\u0008\u000e-\u001f]/;

/** A body as the console shows it. */
export interface BodyText {
  /** `json`: parsed and pretty-printed; `text`: UTF-8 as it is; `binary`: hex (also an encoded, e.g. gzip, body). */
  kind: 'empty' | 'json' | 'text' | 'binary';
  text: string;
  /** The body's size in bytes. */
  bytes: number;
  /** Whether `text` shows only the beginning of the body. */
  cut: boolean;
}

/**
 * How to show a body: JSON pretty-printed, other UTF-8 text as it is, anything else (not UTF-8,
 * control characters, or a content encoding such as gzip) as a hex dump of its first bytes; long
 * ones cut. Invisible characters in text are written out (see visibleText).
 */
export function bodyText(content: Buffer, contentType?: string, contentEncoding?: string): BodyText {
  const bytes = content.length;
  if (bytes === 0) return { kind: 'empty', text: '', bytes, cut: false };
  const encoded = contentEncoding !== undefined && !/^(identity|utf-?8)$/i.test(contentEncoding);
  const text = !encoded && isUtf8(content) ? content.toString('utf8') : undefined;
  if (text === undefined || BINARY_CONTROLS.test(text)) {
    return { kind: 'binary', text: hexDump(content.subarray(0, MAX_HEX_BYTES)), bytes, cut: bytes > MAX_HEX_BYTES };
  }
  const json = looksLikeJson(text, contentType) && bytes <= MAX_JSON_BYTES ? prettyJson(text) : undefined;
  const shown = cutText(json ?? text, MAX_BODY_CHARS);
  return { kind: json === undefined ? 'text' : 'json', text: visibleText(shown.text), bytes, cut: shown.cut };
}

/** Rows of 16 bytes: the offset, then the bytes in hex. */
export function hexDump(bytes: Buffer): string {
  const rows: string[] = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = [...bytes.subarray(at, at + 16)].map((byte) => byte.toString(16).padStart(2, '0')).join(' ');
    rows.push(`${at.toString(16).padStart(8, '0')}  ${row}`);
  }
  return rows.join('\n');
}

function looksLikeJson(text: string, contentType?: string): boolean {
  return /json/i.test(contentType ?? '') || /^\s*[[{"]/.test(text);
}

function prettyJson(text: string): string | undefined {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return undefined;
  }
}
