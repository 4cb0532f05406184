import { IdempotencyStoreTimeoutError } from '../../lib/messaging.errors';
import { withinDeadline } from '../../lib/idempotency/store-deadline';
import { deferred } from '../support/broker';

/** The deadline every idempotency store call runs under (cases 58 and 61). */
describe('withinDeadline', () => {
  it('gives the answer that comes in time', async () => {
    await expect(withinDeadline(Promise.resolve('claimed'), 1_000, 'a claim')).resolves.toBe('claimed');
    await expect(withinDeadline(Promise.reject(new Error('ECONNREFUSED')), 1_000, 'a claim')).rejects.toThrow('ECONNREFUSED');
  });

  it('rejects with IdempotencyStoreTimeoutError at the deadline, and hands a late answer to `late`', async () => {
    const answer = deferred<string>();
    const late = deferred<string>();
    const bounded = withinDeadline(answer.promise, 20, 'a claim', undefined, late.resolve);
    await expect(bounded).rejects.toThrow(IdempotencyStoreTimeoutError);
    await expect(bounded).rejects.toThrow('The idempotency store did not answer a claim within 20 ms');
    answer.resolve('claimed');
    await expect(late.promise).resolves.toBe('claimed');
  });

  it('resolves undefined as soon as the signal aborts (also when it already had), and a late answer goes to `late`', async () => {
    const controller = new AbortController();
    const answer = deferred<string>();
    const late = deferred<string>();
    const bounded = withinDeadline(answer.promise, 60_000, 'a claim', controller.signal, late.resolve);
    controller.abort();
    await expect(bounded).resolves.toBeUndefined();
    answer.resolve('claimed');
    await expect(late.promise).resolves.toBe('claimed');
    await expect(withinDeadline(new Promise(() => undefined), 60_000, 'a claim', controller.signal)).resolves.toBeUndefined();
  });
});
