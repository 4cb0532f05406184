import { CLS_ID, type ClsService } from 'nestjs-cls';
import { readTrackHeaders, TRACK_STORE, type TrackLimits } from '../context/track-store';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { Invoker } from './queue-routes';

interface Waiting {
  payload: unknown;
  context: MessageContext;
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

/**
 * Gathers a batch handler's messages: up to `size`, for at most `timeoutMs` after the first, then
 * calls the handler once with `(payloads, contexts)`. Each message's own outcome follows the
 * batch's: all acked together when it returns (one multiple ack, as they finish in one tick),
 * each retried by the policy when it throws, unless the handler settled some itself through
 * their contexts. The batch runs in a scope of its own (a fresh request id): it has no single
 * parent message.
 */
export class BatchCollector implements Invoker {
  private waiting: Waiting[] = [];
  private timer?: NodeJS.Timeout;
  /** Consuming stopped: a message still reaching the collector (its decode finished late) runs at once. */
  private stopped = false;

  constructor(
    private readonly handler: Invoker,
    private readonly size: number,
    private readonly timeoutMs: number,
    private readonly cls: ClsService,
    private readonly limits: TrackLimits,
  ) {}

  invoke(payload: unknown, context: MessageContext): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.waiting.push({ payload, context, resolve, reject });
      if (this.stopped || this.waiting.length >= this.size) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.timeoutMs);
    });
  }

  stop(): void {
    this.stopped = true;
    this.flush();
  }

  /** Hands what is gathered to the handler now (the batch is full, its time is up, or consuming stopped). */
  private flush(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.waiting;
    if (batch.length === 0) return;
    this.waiting = [];
    const track = readTrackHeaders({}, undefined, this.limits);
    this.cls.runWith({ [CLS_ID]: track.requestId, [TRACK_STORE]: track }, () => {
      let result: unknown;
      try {
        result = this.handler.invoke(
          batch.map((m) => m.payload),
          batch.map((m) => m.context) as unknown as MessageContext,
        );
      } catch (error) {
        for (const m of batch) m.reject(error);
        return;
      }
      Promise.resolve(result).then(
        () => batch.forEach((m) => m.resolve(undefined)),
        (error: unknown) => batch.forEach((m) => m.reject(error)),
      );
    });
  }
}
