import { decode } from '../support/codecs';
import { maskUrl } from '../../lib/util/url';
import { DecodeError } from '../../lib';

/** RELIABILITY.md 35 (escaped prototype keys), API.md's text/plain codec, and maskUrl with a raw "@" in the password. */
describe('codec: prototype keys written with JSON escapes', () => {
  const isOwn = (value: unknown, key: string) => Object.prototype.hasOwnProperty.call(value, key);

  it('35: drops "\\u005f_proto__", "\\u0063onstructor" and an escaped "prototype" like the literal keys, at any depth', () => {
    // No body names a key literally: the escapes alone must be enough to have them removed.
    const decoded = (body: string) => decode(Buffer.from(body), 'application/json', 1e6) as Record<string, any>;
    const top = decoded(String.raw`{"\u005f_proto__":{"polluted":1},"ok":1}`);
    expect(isOwn(top, '__proto__')).toBe(false);
    expect(Object.getPrototypeOf(top)).toBe(Object.prototype);
    expect(top).toEqual({ ok: 1 });
    const nested = decoded(String.raw`{"a":{"\u0063onstructor":{"prototype":{"polluted":2}}},"b":[{"__pro\u0074o__":{"isAdmin":true}}]}`);
    expect(isOwn(nested.a, 'constructor')).toBe(false);
    expect(isOwn(nested.b[0], '__proto__')).toBe(false);
    const escapedPrototype = decoded(String.raw`{"c":{"\u0063onstructor":{"\u0070rototype":{"polluted":3}}}}`);
    expect(isOwn(escapedPrototype.c, 'constructor')).toBe(false);
    // A constructor that is plain data cannot reach a prototype: it stays.
    expect(decoded(String.raw`{"\u0063onstructor":"kept"}`).constructor).toBe('kept');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('35: also without a content type (a body that parses as JSON)', () => {
    const payload = decode(Buffer.from(String.raw`{"\u005f\u005fproto\u005f\u005f":{"x":1},"ok":true}`), undefined, 1e6);
    expect(payload).toEqual({ ok: true });
    expect(isOwn(payload, '__proto__')).toBe(false);
  });
});

describe('codec: text/plain', () => {
  it('decodes text/plain to a string (UTF-8 unless a charset says otherwise)', () => {
    expect(decode(Buffer.from('héllo {"not": "json"}'), 'text/plain', 1e6)).toBe('héllo {"not": "json"}');
    expect(decode(Buffer.from('héllo'), 'text/plain; charset=utf-8', 1e6)).toBe('héllo');
    expect(decode(Buffer.from('h\xe9llo', 'latin1'), 'Text/Plain; charset="ISO-8859-1"', 1e6)).toBe('héllo');
    expect(decode(Buffer.alloc(0), 'text/plain', 1e6)).toBe('');
  });

  it('refuses an unknown charset and a text over maxMessageBytes with DecodeError', () => {
    expect(() => decode(Buffer.from('x'), 'text/plain; charset=klingon', 1e6)).toThrow(DecodeError);
    expect(() => decode(Buffer.from('12345'), 'text/plain', 3)).toThrow(DecodeError);
  });
});

describe('maskUrl', () => {
  it('5: masks a password that contains a raw "@" up to the last "@" of the authority', () => {
    expect(maskUrl('amqp://user:p@ss@host:5672/vh')).toBe('amqp://user:***@host:5672/vh');
    expect(maskUrl('amqps://u:a@b@c@rabbit.example')).toBe('amqps://u:***@rabbit.example');
    expect(maskUrl('Cannot connect to amqp://u:p@ss@h1, amqp://v:q@h2/x and amqp://h3:5672/a@b')).toBe(
      'Cannot connect to amqp://u:***@h1, amqp://v:***@h2/x and amqp://h3:5672/a@b',
    );
    expect(maskUrl('amqp://u:p@h1,amqp://v:q@r@h2')).toBe('amqp://u:***@h1,amqp://v:***@h2');
    expect(maskUrl('amqp://guest:guest@127.0.0.1:5672')).toBe('amqp://guest:***@127.0.0.1:5672');
  });
});
