import { ClsServiceManager } from 'nestjs-cls';
import { MessagingConfigError, MessagingError, TrackContext, TrackLimitError } from '../../lib';
import { resolveOptions } from '../../lib/messaging.options';
import { NOOP_TELEMETRY } from '../../lib/telemetry/noop.telemetry';

/** RELIABILITY.md 38: what TrackContext.set() carries stays well under AMQP's 64 KiB header table. */
describe('track limits', () => {
  const options = resolveOptions({ uri: 'amqp://x' });
  const track = new TrackContext(ClsServiceManager.getClsService(), options, NOOP_TELEMETRY);
  const inContext = <T>(fn: () => T): T => ClsServiceManager.getClsService().run(fn);

  it('by default a full set of items fits in 32 KiB of headers', () => {
    const { maxItems, maxKeyLength, maxValueLength } = options.track;
    expect(maxItems * (14 + maxKeyLength + maxValueLength)).toBeLessThanOrEqual(32 * 1024);
  });

  it('set() beyond maxItems throws TrackLimitError and keeps what was set; replacing a value still works', () => {
    inContext(() => {
      for (let i = 0; i < options.track.maxItems; i++) track.set(`k${i}`, 'v'.repeat(options.track.maxValueLength));
      expect(() => track.set('one-more', 'v')).toThrow(TrackLimitError);
      expect(() => track.set('one-more', 'v')).toThrow(MessagingError);
      expect(track.get('one-more')).toBeUndefined();
      track.set('k0', 'replaced');
      expect(track.get('k0')).toBe('replaced');
      expect(Object.keys(track.items())).toHaveLength(options.track.maxItems);
    });
  });

  it('values are measured in UTF-8 bytes, what they take in a header table', () => {
    inContext(() => {
      const max = options.track.maxValueLength;
      track.set('ascii', 'a'.repeat(max));
      expect(() => track.set('euro', '€'.repeat(Math.ceil(max / 3) + 1))).toThrow(MessagingError);
      track.set('euro', '€'.repeat(Math.floor(max / 3)));
    });
  });

  it('refuses limits whose full set of items would not fit in 32 KiB of headers', () => {
    expect(() => resolveOptions({ uri: 'amqp://x', track: { maxItems: 64, maxValueLength: 1024 } })).toThrow(MessagingConfigError);
    expect(() => resolveOptions({ uri: 'amqp://x', track: { maxItems: 64, maxValueLength: 1024 } })).toThrow('option "track"');
    expect(resolveOptions({ uri: 'amqp://x', track: { maxItems: 16, maxValueLength: 1024 } }).track.maxValueLength).toBe(1024);
  });
});
