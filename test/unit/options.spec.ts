import { MessagingConfigError } from '../../lib';
import { resolveOptions } from '../../lib/messaging.options';
import { maskUrl } from '../../lib/util/url';
import { backoffDelay } from '../../lib/connection/backoff';
import { defineHandler, policyDelays, retryQueueName } from '../../lib/topology/handler-definition';

describe('resolveOptions', () => {
  it('fills in the documented defaults', () => {
    const options = resolveOptions({ uri: 'amqp://localhost' });
    expect(options).toMatchObject({
      urls: ['amqp://localhost'],
      serviceName: 'nestjs-messaging',
      prefetch: 20,
      rpcTimeoutMs: 10_000,
      shutdownTimeoutMs: 10_000,
      retry: { attempts: 3, delaysMs: [1000, 5000] },
      registerHandlers: true,
      heartbeatSeconds: 10,
      reconnect: { initialDelayMs: 200, maxDelayMs: 10_000, startupTimeoutMs: 15_000 },
      publishTimeoutMs: 30_000,
      maxBufferedPublishes: 10_000,
      maxMessageBytes: 16 * 1024 * 1024,
      maxRedeliveries: 5,
      persistent: true,
      track: { maxRequestIdLength: 256, maxItems: 64, maxKeyLength: 64, maxValueLength: 256 },
    });
  });

  it('accepts several cluster URLs, amqps, retry false and waiting forever for the broker', () => {
    const options = resolveOptions({
      uri: ['amqp://a:5672', 'amqps://b:5671'],
      retry: false,
      reconnect: { startupTimeoutMs: Infinity },
    });
    expect(options.urls).toHaveLength(2);
    expect(options.retry).toBe(false);
    expect(options.reconnect.startupTimeoutMs).toBe(Infinity);
  });

  it.each([
    [{}, 'option "uri" is required'],
    [{ uri: [] }, 'option "uri" must be an amqp:// or amqps:// URL or a non-empty list'],
    [{ uri: 'amqp://x', prefetch: 1.5 }, 'option "prefetch" must be an integer from 1 to 65535 (got 1.5)'],
    [{ uri: 'amqp://x', heartbeatSeconds: '10' }, 'option "heartbeatSeconds" must be an integer'],
    [{ uri: 'amqp://x', registerHandlers: 'yes' }, 'option "registerHandlers" must be true or false (got "yes")'],
    [{ uri: 'amqp://x', retry: { attempts: 3, delaysMs: [-1] } }, 'option "retry.delaysMs" must be an array of non-negative integers'],
    [{ uri: 'amqp://x', reconnect: { maxDelayMs: -1 } }, 'option "reconnect.maxDelayMs"'],
    [{ uri: 'amqp://x', serviceName: '' }, 'option "serviceName" must be a non-empty string'],
    [{ uri: 'amqp://x', tls: 'yes' }, 'option "tls" must be an object'],
    [{ uri: 'amqp://x', track: { maxItems: -1 } }, 'option "track.maxItems"'],
  ])('rejects %j naming the option', (options, message) => {
    expect(() => resolveOptions(options as never)).toThrow(MessagingConfigError);
    expect(() => resolveOptions(options as never)).toThrow(message);
  });

  it('never shows a password, even in the error about the URL itself', () => {
    expect(() => resolveOptions({ uri: 'http://user:pa55@host' })).toThrow('(got "http://user:***@host")');
    expect(() => resolveOptions({ uri: 'amqp://user:pa55@' })).not.toThrow(/pa55/);
  });
});

describe('maskUrl', () => {
  it('masks every password in a text and keeps the rest', () => {
    expect(maskUrl('amqp://guest:guest@localhost:5672/vhost')).toBe('amqp://guest:***@localhost:5672/vhost');
    expect(maskUrl('a amqps://u:p%40ss@h b amqp://x:y@z')).toBe('a amqps://u:***@h b amqp://x:***@z');
    expect(maskUrl('amqp://localhost')).toBe('amqp://localhost');
    expect(maskUrl('amqp://user@localhost')).toBe('amqp://user@localhost');
    expect(maskUrl('https://u:secret@h')).toBe('https://u:***@h');
  });
});

describe('backoffDelay', () => {
  it('grows exponentially up to the cap, with jitter between the initial delay and the ceiling', () => {
    expect(backoffDelay(0, 200, 10_000, () => 0)).toBe(200);
    expect(backoffDelay(0, 200, 10_000, () => 1)).toBe(200);
    expect(backoffDelay(3, 200, 10_000, () => 1)).toBe(1600);
    expect(backoffDelay(3, 200, 10_000, () => 0)).toBe(200);
    expect(backoffDelay(20, 200, 10_000, () => 1)).toBe(10_000);
    expect(backoffDelay(1000, 200, 10_000, () => 0.5)).toBe(5100);
  });
});

describe('defineHandler', () => {
  const module = resolveOptions({ uri: 'amqp://x', serviceName: 'svc', prefetch: 7 });

  it('applies module defaults and default binding keys per exchange type', () => {
    expect(defineHandler('A.a', { queue: 'q' }, module, 'i1')).toMatchObject({
      queue: 'q',
      baseQueue: 'q',
      prefetch: 7,
      routingKeys: [],
      durable: true,
      retry: { attempts: 3, delaysMs: [1000, 5000] },
    });
    expect(defineHandler('A.a', { queue: 'q', exchange: 'e' }, module, 'i1').routingKeys).toEqual(['#']);
    expect(defineHandler('A.a', { queue: 'q', exchange: 'e', exchangeType: 'direct' }, module, 'i1').routingKeys).toEqual(['q']);
    expect(defineHandler('A.a', { queue: 'q', exchange: 'e', exchangeType: 'fanout' }, module, 'i1').routingKeys).toEqual(['']);
  });

  it('gives broadcast handlers a per-instance, non-durable queue and a shared dead-letter stem', () => {
    const definition = defineHandler('A.a', { exchange: 'cfg', broadcast: true }, module, 'host-1-abc');
    expect(definition).toMatchObject({ queue: 'cfg.svc.broadcast.host-1-abc', baseQueue: 'cfg.svc', durable: false });
    expect(retryQueueName(definition, 100)).toBe('cfg.svc.retry.100ms.host-1-abc');
  });

  it.each([
    [{}, '"queue" is required unless "broadcast" is true'],
    [{ broadcast: true }, '"broadcast: true" needs an "exchange"'],
    [{ queue: 'q', routingKey: 'k' }, '"routingKey" needs an "exchange"'],
    [{ queue: 'q', prefetch: 0 }, '"prefetch" must be an integer from 1 to 65535'],
    [{ queue: 'q', exchange: 'e', exchangeType: 'x' }, '"exchangeType" must be one of topic, direct, fanout, headers'],
    [{ queue: 'amq.q' }, 'queue names starting with "amq." are reserved'],
  ])('rejects %j naming the handler', (options, message) => {
    expect(() => defineHandler('Orders.place', options as never, module, 'i')).toThrow(`@MessageHandler on Orders.place: ${message}`);
  });

  it('declares one retry queue per distinct non-zero delay actually used', () => {
    const uses = (retry: { attempts: number; delaysMs?: number[] }) =>
      policyDelays(defineHandler('A.a', { queue: 'q', retry }, module, 'i').retry);
    expect(uses({ attempts: 1 })).toEqual([]);
    expect(uses({ attempts: 3, delaysMs: [100] })).toEqual([100]);
    expect(uses({ attempts: 4, delaysMs: [100, 200, 300, 400] })).toEqual([100, 200, 300]);
    expect(uses({ attempts: 3, delaysMs: [0, 50] })).toEqual([50]);
    expect(uses({ attempts: 5 })).toEqual([]);
  });
});
