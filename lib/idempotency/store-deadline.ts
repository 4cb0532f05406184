import { IdempotencyStoreTimeoutError } from '../messaging.errors';

/**
 * A store call that cannot hold a delivery forever (a stalled connection answers nothing, and a
 * promise cannot be cancelled): resolves with the store's answer; rejects with
 * IdempotencyStoreTimeoutError after `timeoutMs`; resolves undefined as soon as `signal` aborts
 * (shutdown gave up on the delivery). An answer that arrives after either goes to `late`, e.g. to
 * release a claim nobody will use.
 */
export function withinDeadline<T>(
  call: Promise<T>,
  timeoutMs: number,
  what: string,
  signal?: AbortSignal,
  late: (value: T) => void = () => undefined,
): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => {
    let over = false;
    const finish = (settle: () => void) => {
      over = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      settle();
    };
    const onAbort = () => finish(() => resolve(undefined));
    const timer = setTimeout(
      () => finish(() => reject(new IdempotencyStoreTimeoutError(`The idempotency store did not answer ${what} within ${timeoutMs} ms`))),
      timeoutMs,
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    call.then(
      (value) => (over ? late(value) : finish(() => resolve(value))),
      (error: unknown) => over || finish(() => reject(error)),
    );
  });
}
