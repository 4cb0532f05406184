import type { Delivery } from './delivery';
import type { MessageOutcome } from './message-outcome';
import { isPromiseLike } from '../util/promise-like';

/**
 * One step of running a delivery's handler call: the last one settles the delivery by what the call
 * returns or throws; a step before it (e.g. IdempotencyGuard) wraps the call or settles the
 * delivery itself without calling on, as Watermill's middleware does around a handler.
 */
export interface DeliveryStep {
  run(delivery: Delivery, attempt: number, call: () => unknown): Promise<void> | void;
}

/**
 * The last step: the call's result is a success (ack, and the reply for a request), its throw a
 * failure (the retry policy). A call that returns synchronously is settled in the same tick, with
 * no promise in between.
 */
export class SettleByResult implements DeliveryStep {
  constructor(private readonly outcome: MessageOutcome) {}

  run(delivery: Delivery, attempt: number, call: () => unknown): Promise<void> | void {
    let result: unknown;
    try {
      result = call();
    } catch (error) {
      return this.outcome.failed(delivery, error, attempt);
    }
    if (isPromiseLike(result)) {
      return Promise.resolve(result).then(
        (value) => this.outcome.succeeded(delivery, value, attempt),
        (error: unknown) => this.outcome.failed(delivery, error, attempt),
      );
    }
    return this.outcome.succeeded(delivery, result, attempt);
  }
}
