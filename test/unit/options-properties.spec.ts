import fc from 'fast-check';
import type { MessagingOptions } from '../../lib/interfaces/messaging-options.interface';
import { MessagingConfigError } from '../../lib/messaging.errors';
import { MAX_TRIES, resolveOptions } from '../../lib/messaging.options';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_TIMER = 2 ** 31 - 1;

interface IntegerOption {
  /** As the error names it, and the path of the value in both the options and the resolved options. */
  path: string;
  min: number;
  max: number;
  /** Other options its object needs to be valid (e.g. compression's algorithm). */
  siblings?: Record<string, unknown>;
  /** The largest value that round-trips with these siblings, when a check across options caps it. */
  validMax?: number;
}

const FAKE_POOL = { query: () => undefined, connect: () => undefined };

/** Every integer option of resolveOptions, with the range its error message states. */
const INTEGER_OPTIONS: IntegerOption[] = [
  { path: 'prefetch', min: 1, max: 65535 },
  { path: 'rpcTimeoutMs', min: 0, max: MAX_TIMER },
  { path: 'shutdownTimeoutMs', min: 0, max: MAX_TIMER },
  { path: 'heartbeatSeconds', min: 0, max: 3600 },
  { path: 'reconnect.initialDelayMs', min: 0, max: MAX_TIMER },
  { path: 'reconnect.maxDelayMs', min: 0, max: MAX_TIMER },
  { path: 'reconnect.startupTimeoutMs', min: 0, max: MAX_TIMER },
  { path: 'publishTimeoutMs', min: 0, max: MAX_TIMER },
  { path: 'maxBufferedPublishes', min: 0, max: MAX_SAFE },
  { path: 'maxInFlightPublishes', min: 1, max: MAX_SAFE },
  { path: 'maxMessageBytes', min: 1, max: MAX_SAFE },
  { path: 'maxPrefetchedBytes', min: 1, max: MAX_SAFE },
  { path: 'maxRedeliveries', min: 0, max: MAX_SAFE },
  { path: 'retry.attempts', min: 1, max: MAX_TRIES },
  // A full set of track items must fit in 32 KiB of headers: with one-character keys and values
  // (16 bytes an item) that is 2048 items; with no items any lengths fit.
  { path: 'track.maxItems', min: 0, max: MAX_SAFE, siblings: { maxKeyLength: 1, maxValueLength: 1 }, validMax: 2048 },
  { path: 'track.maxRequestIdLength', min: 1, max: MAX_SAFE },
  { path: 'track.maxKeyLength', min: 1, max: MAX_SAFE, siblings: { maxItems: 0 } },
  { path: 'track.maxValueLength', min: 1, max: MAX_SAFE, siblings: { maxItems: 0 } },
  { path: 'compression.thresholdBytes', min: 0, max: MAX_SAFE, siblings: { algorithm: 'gzip' } },
  { path: 'idempotency.ttlMs', min: 1, max: MAX_SAFE },
  { path: 'idempotency.leaseMs', min: 1, max: MAX_TIMER },
  { path: 'idempotency.storeTimeoutMs', min: 1, max: MAX_TIMER },
  { path: 'outbox.batchSize', min: 1, max: 10_000, siblings: { pool: FAKE_POOL } },
  { path: 'outbox.pollIntervalMs', min: 1, max: MAX_TIMER, siblings: { pool: FAKE_POOL } },
  { path: 'outbox.retentionMs', min: 0, max: MAX_SAFE, siblings: { pool: FAKE_POOL } },
  { path: 'outbox.queryTimeoutMs', min: 1, max: MAX_TIMER, siblings: { pool: FAKE_POOL } },
];

/** The module options with `value` at the option's path (and what its object needs beside it). */
function withOption({ path, siblings }: IntegerOption, value: unknown): MessagingOptions {
  const [top, key] = path.split('.');
  return { uri: 'amqp://localhost', [top]: key === undefined ? value : { ...siblings, [key]: value } } as MessagingOptions;
}

function valueAt(resolved: object, path: string): unknown {
  return path.split('.').reduce<unknown>((object, key) => (object as Record<string, unknown>)[key], resolved);
}

function refusal(options: MessagingOptions): MessagingConfigError {
  try {
    resolveOptions(options);
  } catch (error) {
    expect(error).toBeInstanceOf(MessagingConfigError);
    return error as MessagingConfigError;
  }
  throw new Error(`accepted: ${JSON.stringify(options)}`);
}

/** Integers strictly outside [min, max]: near each bound and far from it, up to ±1e300. */
function outside({ min, max }: IntegerOption): fc.Arbitrary<number> {
  const below = fc.oneof(
    fc.integer({ min: min - 1000, max: min - 1 }),
    fc.double({ min: -1e300, max: min - 1, noNaN: true }).map((x) => Math.ceil(x)),
  );
  const above = fc.oneof(
    fc.constant(max + 1),
    fc.double({ min: max + 1, max: 1e300, noNaN: true }).map((x) => Math.floor(x)),
    ...(max + 1000 <= MAX_SAFE ? [fc.integer({ min: max + 1, max: max + 1000 })] : []),
  );
  return fc.oneof(below, above);
}

describe('resolveOptions: integer options (properties)', () => {
  const option = fc.constantFrom(...INTEGER_OPTIONS);

  it('refuses any integer outside its range with MessagingConfigError naming the option and the range', () => {
    fc.assert(
      fc.property(
        option.chain((o) => fc.tuple(fc.constant(o), outside(o))),
        ([o, value]) => {
          expect(refusal(withOption(o, value)).message).toBe(
            `MessagingModule option "${o.path}" must be an integer from ${o.min} to ${o.max} (got ${String(value)})`,
          );
        },
      ),
      { numRuns: 500 },
    );
  });

  it('refuses any value that is not an integer, naming the option', () => {
    const notInteger = fc.oneof(
      fc.double({ noNaN: false }).filter((x) => !Number.isInteger(x) && x !== Infinity),
      fc.string(),
      fc.boolean(),
      fc.constant(null),
      fc.constant(-Infinity),
      fc.array(fc.integer(), { maxLength: 1 }),
    );
    fc.assert(
      fc.property(option, notInteger, (o, value) => {
        expect(refusal(withOption(o, value)).message).toMatch(
          new RegExp(`^MessagingModule option "${o.path.replace('.', '\\.')}" must be`),
        );
      }),
      { numRuns: 500 },
    );
  });

  it('takes any integer in its range and resolves it unchanged', () => {
    fc.assert(
      fc.property(
        option.chain((o) =>
          fc.tuple(
            fc.constant(o),
            fc.oneof(
              fc.constantFrom(o.min, o.validMax ?? o.max),
              fc.integer({ min: o.min, max: Math.min(o.validMax ?? o.max, MAX_TIMER) }),
            ),
          ),
        ),
        ([o, value]) => {
          expect(valueAt(resolveOptions(withOption(o, value)), o.path)).toBe(value);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('takes Infinity only for reconnect.startupTimeoutMs (wait for the broker forever)', () => {
    for (const o of INTEGER_OPTIONS) {
      if (o.path === 'reconnect.startupTimeoutMs')
        expect(resolveOptions(withOption(o, Infinity)).reconnect.startupTimeoutMs).toBe(Infinity);
      else expect(refusal(withOption(o, Infinity)).message).toContain(`"${o.path}"`);
    }
  });

  it('refuses track limits whose full set of items would not fit in 32 KiB of headers, naming "track"', () => {
    // 64 items x (14 + 64 + 500) bytes > 32768.
    expect(refusal({ uri: 'amqp://x', track: { maxValueLength: 500 } }).message).toBe(
      'MessagingModule option "track" must be limits whose full set of items fits in 32768 bytes of headers: ' +
        'maxItems x (14 + maxKeyLength + maxValueLength) <= 32768 (got "64 x (14 + 64 + 500) = 36992")',
    );
    expect(() => resolveOptions({ uri: 'amqp://x', track: { maxItems: 2048, maxKeyLength: 1, maxValueLength: 1 } })).not.toThrow();
    expect(() => resolveOptions({ uri: 'amqp://x', track: { maxItems: 2049, maxKeyLength: 1, maxValueLength: 1 } })).toThrow('"track"');
  });
});

// ---- URL passwords

/** Characters a password can hold in a URL as written: unreserved, sub-delims, ':', '@' and percent escapes. */
const PASSWORD_CHARS = [..."abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~!$&'()*+,;=:@%"];
const USER_CHARS = [...'abcdefghijklmnopqrstuvwxyz0123456789-._~'];

/** A password no error text could contain by chance: a fixed marker and random characters. */
const passwordArb = fc.string({ unit: fc.constantFrom(...PASSWORD_CHARS), maxLength: 20 }).map((tail) => `Pw9Zq${tail}`);
const userArb = fc.string({ unit: fc.constantFrom(...USER_CHARS), minLength: 1, maxLength: 10 });
const hostArb = fc.constantFrom('rabbit', 'rabbit.example.com', '10.0.0.7', 'h');

function message(options: unknown): string {
  try {
    resolveOptions(options as MessagingOptions);
  } catch (error) {
    expect(error).toBeInstanceOf(MessagingConfigError);
    return (error as Error).message;
  }
  throw new Error('accepted');
}

describe('resolveOptions: URLs with passwords in error messages (properties)', () => {
  /** Option sets that are refused while showing a URL with a password. */
  const refusedWith = (url: string): unknown[] => [
    { uri: url.replace(/^amqp/, 'http') }, // not an AMQP URL
    { uri: `${url}:99999` }, // port out of range: not a valid URL
    { uri: ['amqp://ok', url.replace(/^amqp/, 'ftp')] }, // one bad URL in a cluster list
    { uri: [url, 'memory://'] }, // memory:// beside broker URLs
    { uri: 'amqp://ok', serviceName: url.padEnd(200, 'x') }, // any string option shown in an error
    { uri: 'amqp://ok', registerHandlers: url },
    { uri: 'amqp://ok', queueType: `${url}/vhost` },
    { uri: 'amqp://ok', compression: { algorithm: url } },
  ];

  it('never show the password, in any refused option', () => {
    fc.assert(
      fc.property(fc.constantFrom('amqp', 'amqps'), userArb, passwordArb, hostArb, (scheme, user, password, host) => {
        const url = `${scheme}://${user}:${password}@${host}`;
        for (const options of refusedWith(url)) {
          const text = message(options);
          expect(text).not.toContain(password);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('show the rest of the URL, with the password as ***', () => {
    expect(message({ uri: 'http://guest:s3cret@rabbit:5672/vh' })).toContain('(got "http://guest:***@rabbit:5672/vh")');
    expect(message({ uri: 'amqp://guest:s3cret@rabbit:99999' })).toBe(
      'MessagingModule option "uri" must be a valid URL (got "amqp://guest:***@rabbit:99999")',
    );
  });

  it('keep valid URLs with passwords as they are (masking is for messages only)', () => {
    fc.assert(
      fc.property(userArb, passwordArb.map(encodeURIComponent), hostArb, (user, password, host) => {
        const url = `amqps://${user}:${password}@${host}`;
        expect(resolveOptions({ uri: [url, url] }).urls).toEqual([url, url]);
      }),
      { numRuns: 100 },
    );
  });

  // A password with a raw "/", "#" or "?" (not percent-encoded, a common slip) makes the URL
  // invalid, and the "must be a valid URL" error once showed it in full: maskUrl ends the
  // authority at that character and finds no "@" before it.
  it.each(['pa/ss', 'pa#ss', 'pa?ss'])('never shows a password with a raw %s in it', (password) => {
    expect(message({ uri: `amqp://guest:${password}@rabbit` })).not.toContain(password);
  });

  // Outside the typed API, but easy from JavaScript: a URL object given as `uri` once went
  // through String(), its full href, unmasked.
  it('never shows the password of a URL object given as uri', () => {
    expect(message({ uri: new URL('amqp://guest:s3cret@rabbit') })).not.toContain('s3cret');
  });
});
