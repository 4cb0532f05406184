import type * as amqp from 'amqplib';

/** One message being handled, on the channel it came from (acks must go back on that channel). */
export class Delivery {
  /** Shutdown gave up on it: the message goes back to the queue, so nothing may settle it. */
  abandoned = false;
  private controller?: AbortController;

  constructor(
    readonly msg: amqp.ConsumeMessage,
    readonly channel: amqp.Channel,
  ) {}

  /** The handler's abort signal, created on first use (an AbortController per message is not free). */
  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.abandoned) this.controller.abort();
    }
    return this.controller.signal;
  }

  abandon(reason: Error): void {
    this.abandoned = true;
    this.controller?.abort(reason);
  }
}
