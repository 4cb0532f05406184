import { decode, encode } from '../support/codecs';
import { DecodeError } from '../../lib';
import { readTrackHeaders, writeTrackHeaders } from '../../lib/context/track-store';
import { resolveOptions } from '../../lib/messaging.options';

describe('JSON codec', () => {
  it('round-trips JSON and passes Buffers through as bytes', () => {
    const { content, contentType } = encode({ a: [1, 'é'] });
    expect(contentType).toBe('application/json');
    expect(decode(content, contentType, 1e6)).toEqual({ a: [1, 'é'] });
    const bytes = encode(Buffer.from([1, 2]));
    expect(bytes.contentType).toBe('application/octet-stream');
    expect(decode(bytes.content, bytes.contentType, 1e6)).toEqual(Buffer.from([1, 2]));
    expect(decode(encode(undefined).content, 'application/json', 10)).toBeNull();
  });

  it('refuses bad JSON, unknown content types and bodies over the limit with DecodeError', () => {
    expect(() => decode(Buffer.from('{nope'), 'application/json', 1e6)).toThrow(DecodeError);
    expect(() => decode(Buffer.from('{}'), 'text/xml', 1e6)).toThrow('Cannot decode content type "text/xml"');
    expect(() => decode(Buffer.from('"12345"'), undefined, 3)).toThrow('more than maxMessageBytes (3)');
    expect(decode(Buffer.from('{"a":1}'), 'application/json; charset=utf-8', 1e6)).toEqual({ a: 1 });
  });

  it('drops keys that could reach a prototype, at any depth', () => {
    const payload = decode(
      Buffer.from(
        '{"__proto__":{"polluted":1},"a":{"constructor":{"prototype":{"polluted":2}},"b":[{"__proto__":{}}]},"constructor":"kept"}',
      ),
      'application/json',
      1e6,
    ) as Record<string, any>;
    expect(Object.prototype.hasOwnProperty.call(payload, '__proto__')).toBe(false);
    expect(payload.a.constructor).toBe(Object);
    expect(Object.keys(payload.a.b[0])).toEqual([]);
    expect(payload.constructor).toBe('kept');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('tracking headers', () => {
  const limits = resolveOptions({ uri: 'amqp://x' }).track;

  it('reads request id, items and causation; writes them back', () => {
    const store = readTrackHeaders(
      { 'x-request-id': 'abc-123', 'x-track-tenant': 't1', 'x-track-n': 5, 'x-track-ok': true, 'x-causation-id': 'm0' },
      'm1',
      limits,
    );
    expect(store).toEqual({
      requestId: 'abc-123',
      items: new Map([
        ['tenant', 't1'],
        ['n', '5'],
        ['ok', 'true'],
      ]),
      messageId: 'm1',
      causationId: 'm0',
    });
    const headers: Record<string, unknown> = {};
    writeTrackHeaders(store, headers);
    expect(headers).toEqual({
      'x-request-id': 'abc-123',
      'x-track-tenant': 't1',
      'x-track-n': '5',
      'x-track-ok': 'true',
      'x-causation-id': 'm1',
    });
  });

  it('replaces a missing, oversized or unprintable request id with a fresh one', () => {
    for (const id of [undefined, 'x'.repeat(257), 'has space', 42, { a: 1 }]) {
      const { requestId } = readTrackHeaders({ 'x-request-id': id }, undefined, limits);
      expect(requestId).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('caps items and ignores non-scalar values, odd keys and inherited entries', () => {
    const headers: Record<string, unknown> = Object.create({ 'x-track-inherited': 'no' });
    for (let i = 0; i < 10_000; i++) headers[`x-track-k${i}`] = `v${i}`;
    headers['x-track-bad key'] = 'no';
    headers['x-track-obj'] = { nested: true };
    const { items } = readTrackHeaders(headers, undefined, limits);
    expect(items.size).toBe(64);
    expect(items.has('inherited')).toBe(false);
    const small = readTrackHeaders(
      { 'x-track-a b': '1', 'x-track-x': 'y'.repeat(1025), 'x-track-arr': [1], 'x-track-nul': null },
      undefined,
      limits,
    );
    expect(small.items.size).toBe(0);
  });
});
