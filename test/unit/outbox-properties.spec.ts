import { decodeProperties, encodeProperties } from '../../lib/outbox/outbox-properties';
import type { PublishProperties } from '../../lib/transport/outgoing';

/** What the outbox stores in its jsonb column must be JSON PostgreSQL takes, and read back as it was. */
describe('outbox row properties', () => {
  const stored = (properties: PublishProperties) => JSON.parse(JSON.stringify(encodeProperties(properties)));
  const roundTrip = (properties: PublishProperties) => decodeProperties(stored(properties));
  /** jsonb refuses \u0000 and unpaired surrogates, which JSON.stringify writes as escapes. */
  const storable = (properties: PublishProperties) =>
    !/\\u0000|\\ud[89ab][0-9a-f]{2}(?!\\ud[c-f])/i.test(JSON.stringify(encodeProperties(properties)));

  it('keeps plain JSON as it is, so rows written before read the same', () => {
    const properties = {
      messageId: 'm1',
      persistent: true,
      priority: 3,
      headers: { a: 'b', n: 1, typed: { '!': 'timestamp', value: 5 }, list: [1, 'x'] },
    };
    expect(encodeProperties(properties)).toEqual(properties);
    expect(decodeProperties(properties as never)).toEqual(properties);
  });

  it('NUL characters and lone surrogates in values and keys, Buffers, Dates, NaN and Infinity come back as they went', () => {
    const properties = {
      messageId: 'm\u0000',
      correlationId: 'c\ud800',
      headers: {
        'x-track-a': 'a\u0000b',
        bytes: Buffer.from([0, 1, 255]),
        when: new Date(1_700_000_000_123),
        nan: NaN,
        inf: -Infinity,
        'k\u0000': { deep: ['x\u0000'] },
      },
    } as unknown as PublishProperties;
    expect(storable(properties)).toBe(true);
    const back = roundTrip(properties);
    expect(back.messageId).toBe('m\u0000');
    // A lone surrogate has no UTF-8 form: the wire gets U+FFFD either way.
    expect(back.correlationId).toBe('c\ufffd');
    expect(back.headers).toEqual({
      'x-track-a': 'a\u0000b',
      bytes: Buffer.from([0, 1, 255]),
      when: new Date(1_700_000_000_123),
      nan: NaN,
      inf: -Infinity,
      'k\u0000': { deep: ['x\u0000'] },
    });
  });

  it('a header object that has the tag as a key reads back as that object, and __proto__ stays a plain key', () => {
    const headers = JSON.parse('{"t": {"$outbox": "bytes", "base64": "AA=="}, "__proto__": {"polluted": true}}');
    const back = roundTrip({ messageId: 'm', headers });
    expect(back.headers!.t).toEqual({ $outbox: 'bytes', base64: 'AA==' });
    expect(Object.prototype.hasOwnProperty.call(back.headers, '__proto__')).toBe(true);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(back.headers)).toBe(Object.prototype);
  });
});
