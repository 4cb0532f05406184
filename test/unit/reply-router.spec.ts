import { EventEmitter } from 'node:events';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { Logger } from '@nestjs/common';
import { CodecRegistry } from '../../lib/codec/codec-registry';
import type { ManagedConnection } from '../../lib/connection/managed-connection';
import { DIRECT_REPLY_TO } from '../../lib/messaging.constants';
import { ConnectionLostError, ExchangeNotFoundError, MessagingError, RpcRemoteError, UnroutableError } from '../../lib/messaging.errors';
import type { Publisher } from '../../lib/publisher/publisher';
import { OneReply, WaitingCall } from '../../lib/rpc/pending-call';
import { type PendingCall, ReplyRouter } from '../../lib/rpc/reply-router';
import type { Telemetry } from '../../lib/telemetry/telemetry.interface';
import type { Outgoing, Settle } from '../../lib/transport/outgoing';
import { ChannelClosedError, REPLY_CODE } from '../../lib/transport/transport.errors';
import type { Message, TransportChannel } from '../../lib/transport/transport.interface';

// ---- Fakes of what the router uses: the RPC publisher's events and submit, a channel's consume,
// ---- a throwaway channel's checkExchange, and the logger.
class FakeRequests extends EventEmitter {
  readonly submitted: Array<{ message: Outgoing; timeoutMs: number; settle: Settle }> = [];
  submit(message: Outgoing, timeoutMs: number, settle: Settle): void {
    this.submitted.push({ message, timeoutMs, settle });
  }
}

function fakeChannel(consumeFails?: Error) {
  const consumed: Array<{ queue: string; options: unknown }> = [];
  let onMessage: (msg: Message | null) => void = () => undefined;
  const channel = {
    consume(queue: string, callback: (msg: Message | null) => void, options: unknown) {
      consumed.push({ queue, options });
      onMessage = callback;
      return consumeFails ? Promise.reject(consumeFails) : Promise.resolve({ consumerTag: 'c1' });
    },
  };
  return { channel: channel as unknown as TransportChannel, consumed, deliver: (msg: Message | null) => onMessage(msg) };
}

function setup(options: { checkExchange?: (name: string) => Promise<void>; codecs?: CodecRegistry } = {}) {
  const requests = new FakeRequests();
  const lookUps: string[] = [];
  const checkExchange = options.checkExchange ?? (() => Promise.resolve());
  const connection = {
    withChannel: <T>(work: (channel: TransportChannel) => Promise<T>) =>
      work({ checkExchange: (name: string) => (lookUps.push(name), checkExchange(name)) } as unknown as TransportChannel),
  };
  const errors: string[] = [];
  const logger = { error: (line: string) => errors.push(line) } as unknown as Logger;
  const codecs = options.codecs ?? new CodecRegistry([], undefined, 1024 * 1024);
  const router = new ReplyRouter(requests as unknown as Publisher, connection as unknown as ManagedConnection, codecs, logger);
  const { channel, deliver } = fakeChannel();
  requests.emit('channel', channel);
  return { router, requests, lookUps, errors, deliver };
}
// ---- end of fakes

function reply(correlationId: string | undefined, body: unknown, properties: Record<string, unknown> = {}): Message {
  return {
    content: Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body)),
    fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'amq.gen-x', consumerTag: 'c1' },
    properties: { correlationId, headers: {}, ...properties },
  } as unknown as Message;
}

/** A pending call that records how it ended. */
function recordingCall() {
  const ended: Array<{ value?: unknown; error?: Error; how: string }> = [];
  const call: PendingCall = {
    onReply: (value, error) => void ended.push({ how: 'reply', value, error }),
    onUnroutable: (error) => void ended.push({ how: 'unroutable', error }),
    onFail: (error) => void ended.push({ how: 'fail', error }),
  };
  return { call, ended };
}

describe('ReplyRouter', () => {
  describe('replies', () => {
    it('consumes direct reply-to, without acks, on every new RPC channel', () => {
      const { requests } = setup();
      const next = fakeChannel();
      requests.emit('channel', next.channel);
      expect(next.consumed).toEqual([{ queue: DIRECT_REPLY_TO, options: { noAck: true } }]);
    });

    it('logs when it cannot consume replies', async () => {
      const { requests, errors } = setup();
      requests.emit('channel', fakeChannel(new Error('no access')).channel);
      await Promise.resolve();
      expect(errors).toEqual(['Cannot consume replies: no access']);
    });

    it('hands a reply, decoded, to the call its correlation id names', () => {
      const { router, deliver } = setup();
      const a = recordingCall();
      const b = recordingCall();
      router.add('a', a.call);
      router.add('b', b.call);
      deliver(reply('b', { total: 3 }));
      expect(b.ended).toEqual([{ how: 'reply', value: { total: 3 }, error: undefined }]);
      expect(a.ended).toEqual([]);
    });

    it('inflates a compressed reply (on the event loop when small)', () => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      deliver(reply('a', gzipSync(JSON.stringify([1, 2])), { contentEncoding: 'gzip' }));
      expect(ended[0].value).toEqual([1, 2]);
    });

    it.each([
      ['no correlation id', undefined],
      ['an id nobody waits for (late, unknown or duplicate)', 'nobody'],
    ])('drops and counts a reply with %s', (_label, id) => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      deliver(reply(id, 1));
      deliver(reply(id, 2));
      expect(router.droppedReplies).toBe(2);
      expect(ended).toEqual([]);
    });

    it('ignores the end of its consumer (a null delivery)', () => {
      const { router, deliver } = setup();
      expect(() => deliver(null)).not.toThrow();
      expect(router.droppedReplies).toBe(0);
    });

    it("turns an error reply into RpcRemoteError with the remote error's name and message", () => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      deliver(reply('a', null, { headers: { 'x-reply-error': true, 'x-error-name': 'ValidationError', 'x-error-message': 'amount < 0' } }));
      expect(ended[0].value).toBeUndefined();
      expect(ended[0].error).toBeInstanceOf(RpcRemoteError);
      expect(ended[0].error).toMatchObject({ remoteName: 'ValidationError', message: 'amount < 0' });
    });

    it('names an error reply without name or message "Error" with an empty message', () => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      deliver(reply('a', null, { headers: { 'x-reply-error': 1 } }));
      expect(ended[0].error).toMatchObject({ remoteName: 'Error', message: '' });
    });

    it('reads the error flag only from the headers themselves, never from a smuggled prototype', () => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      const headers = Object.create({ 'x-reply-error': true, 'x-error-name': 'Forged' }) as Record<string, unknown>;
      deliver(reply('a', 'fine', { headers }));
      expect(ended).toEqual([{ how: 'reply', value: 'fine', error: undefined }]);
    });

    it('answers an undecodable reply with RpcRemoteError named DecodeError', () => {
      const { router, deliver } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      deliver(reply('a', Buffer.from('{not json')));
      expect(ended[0].error).toMatchObject({ remoteName: 'DecodeError' });
      expect(ended[0].error?.message).toContain('not valid JSON');
    });

    it('hands a reply inflated off the event loop to its call only if that call still waits', async () => {
      // A codec registry whose decode finishes when the test says: the call ends (timeout, abort) meanwhile.
      const pending: Array<(value: unknown) => void> = [];
      const codecs = { decode: () => new Promise((resolve) => pending.push(resolve)) } as unknown as CodecRegistry;
      const { router, deliver } = setup({ codecs });
      const gone = recordingCall();
      const waiting = recordingCall();
      router.add('gone', gone.call);
      router.add('waiting', waiting.call);
      deliver(reply('gone', null, { contentEncoding: 'br' }));
      deliver(reply('waiting', null, { contentEncoding: 'br' }));
      router.delete('gone');
      router.add('gone', recordingCall().call); // even a new call under the same id is not the one the reply was for
      pending.forEach((resolve, i) => resolve(`payload ${i}`));
      await Promise.resolve();
      expect(gone.ended).toEqual([]);
      expect(waiting.ended).toEqual([{ how: 'reply', value: 'payload 1', error: undefined }]);
    });

    it('brings a brotli reply (always inflated off the loop) to a waiting request', async () => {
      const { router, deliver } = setup();
      const telemetry = { rpcStarted: () => 0, rpcEnded: () => undefined } as unknown as Telemetry;
      const answer = new Promise((resolve, reject) => {
        new WaitingCall(router, telemetry, 'r1', 'q', 60_000, undefined, new OneReply(resolve, reject, 'q', 60_000));
      });
      expect(router.size).toBe(1);
      deliver(reply('r1', brotliCompressSync(JSON.stringify({ ok: true })), { contentEncoding: 'br' }));
      await expect(answer).resolves.toEqual({ ok: true });
      expect(router.size).toBe(0);
    });
  });

  describe('returns and lost channels', () => {
    it('fails the call of a returned request with UnroutableError naming where it went', () => {
      const { router, requests } = setup();
      const { call, ended } = recordingCall();
      router.add('a', call);
      requests.emit('return', { ...reply('a', null), fields: { exchange: '', routingKey: 'no-such-queue' } });
      requests.emit('return', { ...reply('other', null), fields: { exchange: '', routingKey: 'x' } });
      expect(ended).toHaveLength(1);
      expect(ended[0].how).toBe('unroutable');
      expect(ended[0].error).toBeInstanceOf(UnroutableError);
      expect(ended[0].error).toMatchObject({ exchange: '', routingKey: 'no-such-queue' });
    });

    it('fails every waiting call with ConnectionLostError when the reply channel is lost, and forgets them', () => {
      const { router, requests } = setup();
      const calls = [recordingCall(), recordingCall()];
      calls.forEach(({ call }, i) => router.add(`c${i}`, call));
      requests.emit('channel-lost', 'CONNECTION_FORCED');
      for (const { ended } of calls) {
        expect(ended[0].how).toBe('fail');
        expect(ended[0].error).toBeInstanceOf(ConnectionLostError);
        expect(ended[0].error?.message).toBe('The reply channel was lost before the reply arrived: CONNECTION_FORCED');
      }
      expect(calls[0].ended[0].error).not.toBe(calls[1].ended[0].error); // one error each
      expect(router.size).toBe(0);
    });

    it('submits requests and direct replies through the RPC publisher as they are', () => {
      const { router, requests } = setup();
      const message: Outgoing = { exchange: '', routingKey: 'q', payload: 1, properties: { messageId: 'm' } };
      const settle = () => undefined;
      router.submit(message, 500, settle);
      expect(requests.submitted).toEqual([{ message, timeoutMs: 500, settle }]);
    });
  });

  describe('ensureExchange', () => {
    it('needs no look-up for the default exchange', async () => {
      const { router, lookUps } = setup();
      await expect(router.ensureExchange('', 100)).resolves.toBe(true);
      expect(lookUps).toEqual([]);
    });

    it('resolves true for an exchange that exists; overlapping look-ups share one, later ones look again', async () => {
      const { router, lookUps } = setup();
      const both = await Promise.all([router.ensureExchange('prices', 1_000), router.ensureExchange('prices', 1_000)]);
      expect(both).toEqual([true, true]);
      expect(lookUps).toEqual(['prices']);
      await router.ensureExchange('prices', 1_000);
      expect(lookUps).toEqual(['prices', 'prices']); // nothing remembered: an exchange may be deleted at any time
    });

    it('rejects with ExchangeNotFoundError when the broker answers 404', async () => {
      const notFound = () => Promise.reject(new ChannelClosedError("NOT_FOUND - no exchange 'prices'", REPLY_CODE.NOT_FOUND));
      const { router } = setup({ checkExchange: notFound });
      const error = await router.ensureExchange('prices', 1_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ExchangeNotFoundError);
      expect(error).toMatchObject({ exchange: 'prices' });
    });

    it('rejects with a MessagingError carrying the cause for any other failure', async () => {
      const cause = new Error('socket closed');
      const { router } = setup({ checkExchange: () => Promise.reject(cause) });
      const error = await router.ensureExchange('prices', 1_000).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(MessagingError);
      expect(error).not.toBeInstanceOf(ExchangeNotFoundError);
      expect(error).toMatchObject({ message: 'Cannot check exchange "prices": socket closed', cause });
    });

    it('resolves false when the broker does not answer within timeoutMs', async () => {
      vi.useFakeTimers();
      try {
        const { router } = setup({ checkExchange: () => new Promise<void>(() => undefined) });
        const answer = router.ensureExchange('prices', 2_000);
        await vi.advanceTimersByTimeAsync(2_000);
        await expect(answer).resolves.toBe(false);
      } finally {
        vi.useRealTimers();
      }
    });
  });
});
