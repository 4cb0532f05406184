import { AsyncLocalStorage } from 'node:async_hooks';
import fc from 'fast-check';
import { ClsService } from 'nestjs-cls';
import { TrackContext } from '../../lib/context/track-context';
import { TRACK_STORE, type TrackStore } from '../../lib/context/track-store';
import type { SendOptions } from '../../lib/interfaces/send-options.interface';
import { InvalidArgumentError, MessagingConfigError } from '../../lib/messaging.errors';
import { resolveOptions } from '../../lib/messaging.options';
import { checkDuration, checkSendOptions, MAX_DELAY_MS, sendProperties } from '../../lib/rpc/send-properties';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

const cls = new ClsService(new AsyncLocalStorage());
const module = resolveOptions({ uri: 'amqp://x', serviceName: 'billing', queues: { invoices: 'prod.invoices' } });
const track = new TrackContext(cls, module, { traceId: () => undefined });

/** What `checkSendOptions` refused, or undefined when it took the options. */
function refused(options: SendOptions): InvalidArgumentError | undefined {
  try {
    checkSendOptions(options);
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return error as InvalidArgumentError;
  }
}

describe('sendProperties', () => {
  it('sent from no context: a fresh message id that is also the request id, the sender in x-origin, module defaults', () => {
    const properties = sendProperties({}, true, track, module);
    expect(properties.messageId).toMatch(UUID);
    expect(properties).toEqual({
      messageId: properties.messageId,
      correlationId: undefined,
      replyTo: undefined,
      priority: undefined,
      expiration: undefined,
      persistent: true,
      mandatory: true,
      contentType: undefined,
      type: undefined,
      headers: { 'x-origin': 'billing', 'x-request-id': properties.messageId },
    });
  });

  it('gives each send its own id', () => {
    const ids = new Set(Array.from({ length: 100 }, () => sendProperties({}, false, track, module).messageId));
    expect(ids.size).toBe(100);
  });

  it("keeps a caller's message id, and then starts a request id of its own (the id may be reused on purpose)", () => {
    const properties = sendProperties({ messageId: 'dedupe-42' }, true, track, module);
    expect(properties.messageId).toBe('dedupe-42');
    expect(properties.headers?.['x-request-id']).toMatch(UUID);
  });

  it('carries the options as AMQP properties: expiration as a string, replyTo renamed like a queue', () => {
    const properties = sendProperties(
      {
        correlationId: 'c1',
        replyTo: 'invoices',
        priority: 3,
        expirationMs: 1500,
        persistent: false,
        contentType: 'text/plain',
        type: 'invoice.created',
      },
      false,
      track,
      module,
    );
    expect(properties).toMatchObject({
      correlationId: 'c1',
      replyTo: 'prod.invoices',
      priority: 3,
      expiration: '1500',
      persistent: false,
      mandatory: false,
      contentType: 'text/plain',
      type: 'invoice.created',
    });
    expect(sendProperties({ replyTo: 'not-renamed' }, false, track, module).replyTo).toBe('not-renamed');
  });

  it("takes persistent from the module's option unless the send sets it", () => {
    const transient = resolveOptions({ uri: 'amqp://x', persistent: false });
    expect(sendProperties({}, true, track, transient).persistent).toBe(false);
    expect(sendProperties({ persistent: true }, true, track, transient).persistent).toBe(true);
  });

  it("copies the caller's headers without changing them, and x-origin is always the sender's", () => {
    const headers = { tenant: 'acme', 'x-origin': 'forged', count: 2 };
    const properties = sendProperties({ headers }, true, track, module);
    expect(properties.headers).toMatchObject({ tenant: 'acme', count: 2, 'x-origin': 'billing' });
    expect(headers).toEqual({ tenant: 'acme', 'x-origin': 'forged', count: 2 });
  });

  it('sent while handling a message: the request id, track items and causation of its context', () => {
    const store: TrackStore = { requestId: 'req-7', items: new Map([['user', 'u1']]), messageId: 'incoming-1' };
    const properties = cls.run(() => {
      cls.set(TRACK_STORE, store);
      return sendProperties({}, true, track, module);
    });
    expect(properties.headers).toEqual({
      'x-origin': 'billing',
      'x-request-id': 'req-7',
      'x-track-user': 'u1',
      'x-causation-id': 'incoming-1',
    });
    expect(properties.messageId).not.toBe('req-7');
  });
});

describe('checkSendOptions', () => {
  it('takes no options, and every option at its bounds', () => {
    expect(refused({})).toBeUndefined();
    expect(refused({ timeoutMs: 1, expirationMs: MAX_DELAY_MS, priority: 0, type: 't' })).toBeUndefined();
    expect(refused({ delayMs: MAX_DELAY_MS, timeoutMs: MAX_DELAY_MS, priority: 255 })).toBeUndefined();
  });

  it.each<[keyof SendOptions, unknown]>([
    ['timeoutMs', 0],
    ['timeoutMs', -1],
    ['timeoutMs', 1.5],
    ['timeoutMs', NaN],
    ['timeoutMs', Infinity],
    ['timeoutMs', MAX_DELAY_MS + 1], // Node would fire a longer timer at once
    ['timeoutMs', '100'],
    ['expirationMs', 0],
    ['expirationMs', -5],
    ['expirationMs', 0.5],
    ['expirationMs', 2 ** 32],
    ['delayMs', 0],
    ['delayMs', NaN],
    ['delayMs', MAX_DELAY_MS + 1],
    ['priority', -1],
    ['priority', 256],
    ['priority', 1.5],
    ['priority', NaN],
    ['priority', '5'],
    ['type', 42],
    ['type', null],
  ])('refuses %s = %s with InvalidArgumentError naming it', (option, value) => {
    const error = refused({ [option]: value } as SendOptions);
    expect(error).toBeInstanceOf(MessagingConfigError);
    expect(error?.option).toBe(option);
    expect(error?.message).toMatch(new RegExp(`^Option "${option}" must be `));
  });

  it('says what it got, a string shown quoted and cut at 40 characters', () => {
    expect(refused({ timeoutMs: 'x'.repeat(100) as never })?.message).toBe(
      `Option "timeoutMs" must be a whole number of milliseconds from 1 to ${MAX_DELAY_MS} (got "${'x'.repeat(40)}")`,
    );
    expect(refused({ priority: 300 })?.message).toBe('Option "priority" must be an integer from 0 to 255 (got 300)');
  });

  it('takes every whole duration from 1 to MAX_DELAY_MS and refuses every other integer (property)', () => {
    const option = fc.constantFrom('timeoutMs', 'expirationMs', 'delayMs');
    fc.assert(
      fc.property(option, fc.integer({ min: 1, max: MAX_DELAY_MS }), (name, value) => {
        expect(refused({ [name]: value })).toBeUndefined();
      }),
    );
    const outside = fc.oneof(fc.integer({ max: 0 }), fc.integer({ min: MAX_DELAY_MS + 1, max: Number.MAX_SAFE_INTEGER }));
    fc.assert(
      fc.property(option, outside, (name, value) => {
        expect(refused({ [name]: value })?.option).toBe(name);
      }),
    );
  });
});

describe('checkDuration', () => {
  it('takes 0 when its minimum is 0 (at once), and undefined always', () => {
    expect(() => checkDuration('waitMs', 0, 0)).not.toThrow();
    expect(() => checkDuration('waitMs', undefined)).not.toThrow();
    expect(() => checkDuration('waitMs', 0)).toThrow('Option "waitMs" must be a whole number of milliseconds from 1 to');
    expect(() => checkDuration('waitMs', -1, 0)).toThrow('from 0 to');
  });
});
