import { own } from '../util/own-headers';
import { randomUUID } from 'node:crypto';
import { HEADER_CAUSATION_ID, HEADER_REQUEST_ID, HEADER_TRACK_PREFIX } from '../messaging.constants';
import type { ResolvedMessagingOptions } from '../messaging.options';

/** The tracking data of one message or request; kept in the nestjs-cls store. */
export interface TrackStore {
  requestId: string;
  items: Map<string, string>;
  /** Id of the message being handled; what it sends carries it as x-causation-id. */
  messageId?: string;
  /** Id of the message that caused the one being handled. */
  causationId?: string;
}

/** Key of the TrackStore in the nestjs-cls store; a symbol, so it cannot clash with the app's keys. */
export const TRACK_STORE = Symbol('nestjs-messaging:track');

const REQUEST_ID_PATTERN = /^[\x21-\x7e]+$/;
const TRACK_KEY_PATTERN = /^[A-Za-z0-9_.:-]+$/;

export type TrackLimits = ResolvedMessagingOptions['track'];

/** Whether a request id from outside (a header, the app's CLS id) may be carried on as it is. */
export function isValidRequestId(id: unknown, limits: TrackLimits): id is string {
  return typeof id === 'string' && id.length <= limits.maxRequestIdLength && REQUEST_ID_PATTERN.test(id);
}

/** Names that would shadow an object's own machinery when items are copied into one (logs, merges). */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Whether an item key and value fit the limits; what TrackContext.set() and incoming headers share.
 * Keys are ASCII; values are measured in UTF-8 bytes, what they take in a header table.
 */
export function isValidItem(key: string, value: string, limits: TrackLimits): boolean {
  return (
    key.length <= limits.maxKeyLength &&
    TRACK_KEY_PATTERN.test(key) &&
    !RESERVED_KEYS.has(key) &&
    value.length <= limits.maxValueLength &&
    Buffer.byteLength(value) <= limits.maxValueLength
  );
}

/**
 * Reads the tracking headers of an incoming message. Headers are untrusted: an id that is too long
 * or not printable is replaced by a fresh one, items beyond the limits or of other types than
 * string/number/boolean are ignored, and only own keys are read (never the prototype).
 */
export function readTrackHeaders(headers: Record<string, unknown>, messageId: string | undefined, limits: TrackLimits): TrackStore {
  const rawId = own(headers, HEADER_REQUEST_ID);
  const requestId = isValidRequestId(rawId, limits) ? rawId : randomUUID();
  const items = new Map<string, string>();
  for (const header of Object.keys(headers)) {
    if (items.size >= limits.maxItems) break;
    if (!header.startsWith(HEADER_TRACK_PREFIX)) continue;
    const raw = headers[header];
    if (typeof raw !== 'string' && typeof raw !== 'number' && typeof raw !== 'boolean') continue;
    const key = header.slice(HEADER_TRACK_PREFIX.length);
    const value = String(raw);
    if (isValidItem(key, value, limits)) items.set(key, value);
  }
  const causation = own(headers, HEADER_CAUSATION_ID);
  return {
    requestId,
    items,
    messageId: typeof messageId === 'string' && messageId.length <= limits.maxRequestIdLength ? messageId : undefined,
    causationId: typeof causation === 'string' && causation.length <= limits.maxRequestIdLength ? causation : undefined,
  };
}

/** The headers that carry a context into the messages sent from it. */
export function writeTrackHeaders(store: TrackStore, headers: Record<string, unknown>): void {
  headers[HEADER_REQUEST_ID] = store.requestId;
  for (const [key, value] of store.items) headers[HEADER_TRACK_PREFIX + key] = value;
  if (store.messageId !== undefined) headers[HEADER_CAUSATION_ID] = store.messageId;
}
