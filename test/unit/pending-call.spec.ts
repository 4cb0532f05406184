import {
  ConnectionLostError,
  RpcAbortedError,
  RpcRemoteError,
  RpcTimeoutError,
  UnroutableError,
  MessagingError,
} from '../../lib/messaging.errors';
import { type CallOutcome, OneReply, Replies, WaitingCall } from '../../lib/rpc/pending-call';
import type { PendingCall, ReplyRouter } from '../../lib/rpc/reply-router';
import type { RpcResult, Telemetry } from '../../lib/telemetry/telemetry.interface';

/** What WaitingCall uses of the router (add, delete) and of the telemetry (rpcStarted, rpcEnded), recorded. */
function harness() {
  const pending = new Map<string, PendingCall>();
  const router = { add: (id: string, call: PendingCall) => pending.set(id, call), delete: (id: string) => pending.delete(id) };
  const ended: Array<[string, number, RpcResult]> = [];
  const telemetry = { rpcStarted: () => 1234, rpcEnded: (...args: [string, number, RpcResult]) => ended.push(args) };
  return { pending, ended, router: router as unknown as ReplyRouter, telemetry: telemetry as unknown as Telemetry };
}

/** request(): a WaitingCall ending a promise through OneReply. */
function request(timeoutMs = 1_000, signal?: AbortSignal) {
  const h = harness();
  let call!: WaitingCall;
  const promise = new Promise<unknown>((resolve, reject) => {
    call = new WaitingCall(
      h.router,
      h.telemetry,
      'corr-1',
      'orders',
      timeoutMs,
      signal,
      new OneReply(resolve, reject, 'orders', timeoutMs),
    );
  });
  return { ...h, call, promise };
}

/** An outcome that records what it was told, to count how often a call ends. */
function recordingOutcome(completeOnReply = true) {
  const events: string[] = [];
  const outcome: CallOutcome = {
    reply: (value) => (events.push(`reply:${String(value)}`), completeOnReply),
    fail: (error) => void events.push(`fail:${error.name}`),
    timeout: () => void events.push('timeout'),
    unroutable: () => void events.push('unroutable'),
  };
  return { events, outcome };
}

describe('WaitingCall', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('registers with the router under its correlation id and arms one timer', () => {
    const { pending, call } = request();
    expect(pending.get('corr-1')).toBe(call);
    expect(vi.getTimerCount()).toBe(1);
  });

  it('resolves with the first reply, then forgets the call and its timer', async () => {
    const { pending, ended, call, promise } = request();
    call.onReply({ ok: true });
    await expect(promise).resolves.toEqual({ ok: true });
    expect(pending.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(ended).toEqual([['orders', 1234, 'answered']]);
  });

  it("rejects with the remote handler's error", async () => {
    const { call, promise, ended } = request();
    call.onReply(undefined, new RpcRemoteError('ValidationError', 'bad amount'));
    await expect(promise).rejects.toMatchObject({ remoteName: 'ValidationError', message: 'bad amount' });
    expect(ended[0][2]).toBe('answered'); // the handler answered, if with an error
  });

  it('times out exactly at timeoutMs with RpcTimeoutError naming the target and the time', async () => {
    const { pending, ended, promise } = request(5_000);
    const settled = vi.fn();
    promise.then(settled, settled);
    await vi.advanceTimersByTimeAsync(4_999);
    expect(settled).not.toHaveBeenCalled();
    await vi.advanceTimersByTimeAsync(1);
    const error = settled.mock.calls[0][0] as RpcTimeoutError;
    expect(error).toBeInstanceOf(RpcTimeoutError);
    expect(error).toMatchObject({ queue: 'orders', timeoutMs: 5_000, message: 'No reply from "orders" within 5000 ms' });
    expect(pending.size).toBe(0);
    expect(ended).toEqual([['orders', 1234, 'timed_out']]);
  });

  it('rejects with RpcAbortedError (named AbortError, the reason as cause) when its signal aborts', async () => {
    const controller = new AbortController();
    const { pending, ended, promise } = request(1_000, controller.signal);
    controller.abort('user left');
    const error = await promise.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RpcAbortedError);
    expect(error).toMatchObject({ name: 'AbortError', cause: 'user left' });
    expect(pending.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
    expect(ended).toEqual([['orders', 1234, 'failed']]);
  });

  it('rejects with UnroutableError when the request was returned, and with the failure of its publish', async () => {
    const returned = request();
    returned.call.onUnroutable(new UnroutableError('', 'orders'));
    await expect(returned.promise).rejects.toBeInstanceOf(UnroutableError);
    expect(returned.ended[0][2]).toBe('failed');

    const lost = request();
    lost.call.onFail(new ConnectionLostError('gone'));
    await expect(lost.promise).rejects.toBeInstanceOf(ConnectionLostError);
    expect(lost.pending.size).toBe(0);
  });

  it('ends once: a publish failure arriving after the timeout does not count the call again', () => {
    const h = harness();
    const { events, outcome } = recordingOutcome();
    const call = new WaitingCall(h.router, h.telemetry, 'c', 'orders', 100, undefined, outcome);
    vi.advanceTimersByTime(100);
    call.onFail(new MessagingError('publish failed late'));
    expect(events).toEqual(['timeout', 'fail:MessagingError']); // the promise ignores the second settlement
    expect(h.ended.map(([, , result]) => result)).toEqual(['timed_out']);
  });

  it('once answered, neither its abort signal nor its timer reaches it any more', () => {
    const controller = new AbortController();
    const h = harness();
    const { events, outcome } = recordingOutcome();
    const call = new WaitingCall(h.router, h.telemetry, 'c', 'orders', 100, controller.signal, outcome);
    call.onReply('first');
    controller.abort();
    vi.advanceTimersByTime(1_000);
    expect(events).toEqual(['reply:first']);
    expect(h.ended.map(([, , result]) => result)).toEqual(['answered']);
  });

  it('stays registered while its outcome wants more replies (gather), and keeps its timer', () => {
    const h = harness();
    const { events, outcome } = recordingOutcome(false);
    const call = new WaitingCall(h.router, h.telemetry, 'g', 'prices', 100, undefined, outcome);
    call.onReply(1);
    call.onReply(2);
    expect(h.pending.get('g')).toBe(call);
    expect(h.ended).toEqual([]);
    vi.advanceTimersByTime(100);
    expect(events).toEqual(['reply:1', 'reply:2', 'timeout']);
    expect(h.pending.size).toBe(0);
    expect(h.ended.map(([, , result]) => result)).toEqual(['timed_out']);
  });

  it('does not listen to a signal that aborted before the call began: the caller checks it (RpcClient calls handleEvent)', () => {
    const h = harness();
    const { events, outcome } = recordingOutcome();
    const call = new WaitingCall(h.router, h.telemetry, 'c', 'orders', 100, AbortSignal.abort('early'), outcome);
    expect(events).toEqual([]);
    call.handleEvent();
    expect(events).toEqual(['fail:AbortError']);
    expect(h.pending.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe('OneReply', () => {
  it('is complete with any reply, and maps each ending to the promise', () => {
    const resolve = vi.fn();
    const reject = vi.fn();
    const one = new OneReply(resolve, reject, 'orders', 250);
    expect(one.reply('v')).toBe(true);
    expect(one.reply(undefined, new RpcRemoteError('E', 'm'))).toBe(true);
    one.timeout();
    expect(resolve.mock.calls).toEqual([['v']]);
    expect(reject.mock.calls.map(([e]) => (e as Error).constructor)).toEqual([RpcRemoteError, RpcTimeoutError]);
    expect((reject.mock.calls[1][0] as RpcTimeoutError).timeoutMs).toBe(250);
  });
});

describe('Replies (gather)', () => {
  function gather(wanted: number) {
    const resolve = vi.fn();
    const reject = vi.fn();
    return { replies: new Replies<number>(resolve, reject, wanted), resolve, reject };
  }

  it.each([
    [1, [10], true],
    [2, [10], false],
    [2, [10, 20], true],
    [3, [10, 20], false],
  ])('expecting %i, replies %j: complete is %s', (expected, values, complete) => {
    const { replies, resolve } = gather(expected);
    const results = values.map((v) => replies.reply(v));
    expect(results.at(-1)).toBe(complete);
    expect(resolve).toHaveBeenCalledTimes(complete ? 1 : 0);
    if (complete) expect(resolve).toHaveBeenCalledWith(values);
  });

  it('counts a failed responder as no answer, not as a failed gather', () => {
    const { replies, resolve, reject } = gather(2);
    expect(replies.reply(1)).toBe(false);
    expect(replies.reply(undefined, new RpcRemoteError('E', 'down'))).toBe(false);
    expect(replies.reply(2)).toBe(true);
    expect(resolve).toHaveBeenCalledWith([1, 2]);
    expect(reject).not.toHaveBeenCalled();
  });

  it('resolves with what it has on timeout, and with nothing when nobody is bound; never rejects for either', () => {
    const timedOut = gather(Infinity);
    timedOut.replies.reply(1);
    timedOut.replies.timeout();
    expect(timedOut.resolve).toHaveBeenCalledWith([1]);

    const unbound = gather(Infinity);
    unbound.replies.unroutable();
    expect(unbound.resolve).toHaveBeenCalledWith([]);
    expect(timedOut.reject).not.toHaveBeenCalled();
    expect(unbound.reject).not.toHaveBeenCalled();
  });

  it('rejects when the call fails (connection lost, aborted)', () => {
    const { replies, reject } = gather(Infinity);
    replies.fail(new ConnectionLostError('gone'));
    expect(reject).toHaveBeenCalledWith(expect.any(ConnectionLostError));
  });
});
