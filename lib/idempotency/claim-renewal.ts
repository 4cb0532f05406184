import type { IdempotencyStore } from '../interfaces/idempotency-store.interface';
import { withinDeadline } from './store-deadline';

/** Says something about one message of the handler (the guard's warning line). */
export type ClaimWarning = (messageId: string, text: string) => void;

/**
 * Keeps a claim alive while its handler runs past the lease, so a copy arriving meanwhile keeps
 * waiting instead of running alongside: renews it every third of `leaseMs` (one slow or failed
 * renewal still leaves time for the next). A store without `renew` cannot: a handler that outlives
 * the lease is warned about instead. So is a renewal that finds the claim gone (it expired while
 * the store was unreachable, and another run may have taken it).
 */
export class ClaimRenewal {
  constructor(
    private readonly store: IdempotencyStore,
    private readonly leaseMs: number,
    private readonly storeTimeoutMs: number,
    private readonly warn: ClaimWarning,
  ) {}

  /**
   * Starts keeping the claim; call the result when the handler is done. Stops by itself when
   * shutdown gives up on the delivery (`signal`): its copy goes back to the queue, and the claim
   * then lapses after the lease, as a crashed instance's would.
   */
  keep(key: string, token: string, messageId: string, signal: AbortSignal): () => void {
    const stop = this.start(key, token, messageId);
    signal.addEventListener('abort', stop, { once: true });
    return () => {
      signal.removeEventListener('abort', stop);
      stop();
    };
  }

  private start(key: string, token: string, messageId: string): () => void {
    const { store, leaseMs } = this;
    if (!store.renew) {
      const timer = setTimeout(() => {
        this.warn(
          messageId,
          `still runs after its lease (idempotency.leaseMs ${leaseMs} ms), and its store cannot renew claims: a copy arriving now may run alongside it`,
        );
      }, leaseMs).unref();
      return () => clearTimeout(timer);
    }
    const renew = store.renew.bind(store);
    let over = false;
    let renewing = false;
    const timer = setInterval(
      () => {
        if (renewing) return;
        renewing = true;
        withinDeadline(renew(key, token, leaseMs), this.storeTimeoutMs, 'a lease renewal')
          .then(
            (held) => {
              if (held || over) return;
              over = true;
              clearInterval(timer);
              this.warn(
                messageId,
                `lost its claim while its handler still runs (it expired after idempotency.leaseMs ${leaseMs} ms): a copy may run alongside it`,
              );
            },
            (error: Error) => over || this.warn(messageId, `cannot renew its claim (${error.message}); trying again`),
          )
          .finally(() => (renewing = false));
      },
      Math.max(1, Math.floor(leaseMs / 3)),
    ).unref();
    return () => {
      over = true;
      clearInterval(timer);
    };
  }
}
