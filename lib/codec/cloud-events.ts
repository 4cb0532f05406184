import type { CloudEventsOptions } from '../interfaces/send-options.interface';
import type { CloudEventAttributes } from '../interfaces/message-context.interface';
import { DecodeError, InvalidArgumentError } from '../messaging.errors';

/**
 * CloudEvents over AMQP (the CloudEvents AMQP protocol binding, spec 1.0): in binary mode an
 * event's attributes travel as application properties (here: headers) named `cloudEvents:<name>`,
 * and its data as the body with `datacontenttype` as the content type; in structured mode the
 * body is the whole event as JSON, content type `application/cloudevents+json`. Headers written by
 * older producers with the `cloudEvents_` prefix are read too. Pure functions.
 */

export const CLOUD_EVENTS_CONTENT_TYPE = 'application/cloudevents+json';
const PREFIXES = ['cloudEvents:', 'cloudEvents_'];
const WRITTEN_PREFIX = PREFIXES[0];
/** The header that makes a message a CloudEvent, and the distributed-tracing extension's (set where the trace context is injected). */
export const CLOUD_EVENT_SPECVERSION = `${WRITTEN_PREFIX}specversion`;
export const CLOUD_EVENT_TRACEPARENT = `${WRITTEN_PREFIX}traceparent`;

/** The binary-mode headers of an outgoing event. */
export function cloudEventHeaders(
  options: CloudEventsOptions,
  id: string,
  fallbackType: string | undefined,
  now: Date,
  contentType?: string,
): Record<string, string> {
  if (typeof options !== 'object' || options === null)
    throw new InvalidArgumentError('cloudEvents', 'an object { source, type? }', options);
  const { source, subject } = options;
  const type = options.type ?? fallbackType;
  if (typeof source !== 'string' || source.length === 0) {
    throw new InvalidArgumentError('cloudEvents.source', 'a non-empty URI-reference naming the producer', source);
  }
  if (typeof type !== 'string' || type.length === 0) {
    throw new InvalidArgumentError('cloudEvents.type', 'the event type, or a "type" send option to take it from', type);
  }
  const attributes: Record<string, string | undefined> = {
    specversion: '1.0',
    id,
    source,
    type,
    time: now.toISOString(),
    subject,
    datacontenttype: contentType,
  };
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) if (value !== undefined) headers[`${WRITTEN_PREFIX}${name}`] = value;
  return headers;
}

/** The attributes of a binary-mode event, read from its headers; undefined for a message that is none. */
export function readCloudEvent(headers: Readonly<Record<string, unknown>>): CloudEventAttributes | undefined {
  let attributes: Record<string, unknown> | undefined;
  for (const key of Object.keys(headers)) {
    const prefix = PREFIXES.find((p) => key.startsWith(p));
    if (prefix === undefined) continue;
    attributes ??= Object.create(null) as Record<string, unknown>;
    const value = headers[key];
    attributes[key.slice(prefix.length)] = Buffer.isBuffer(value) ? value.toString('utf8') : value;
  }
  return attributes?.specversion === undefined ? undefined : attributes;
}

/** A structured-mode event, decoded from JSON: its data (from `data`, or `data_base64` as a Buffer) and its attributes. */
export function readStructuredCloudEvent(event: unknown): { data: unknown; attributes: CloudEventAttributes } {
  if (typeof event !== 'object' || event === null || typeof (event as { specversion?: unknown }).specversion !== 'string') {
    throw new DecodeError(`An ${CLOUD_EVENTS_CONTENT_TYPE} body is a JSON object with at least "specversion"`);
  }
  const { data, data_base64: base64, ...attributes } = event as Record<string, unknown>;
  if (base64 !== undefined && typeof base64 !== 'string') throw new DecodeError('"data_base64" of a CloudEvent is a base64 string');
  return { data: base64 === undefined ? data : Buffer.from(base64, 'base64'), attributes };
}

const STRUCTURED = /^application\/cloudevents\+json\b/i;

/** Whether a content type is the structured mode's (parameters such as a charset allowed); asked of every delivery, so it allocates nothing. */
export function isStructuredCloudEvent(contentType: string | undefined): boolean {
  return contentType !== undefined && STRUCTURED.test(contentType);
}
