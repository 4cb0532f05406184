import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import type { ResolvedOutbox } from '../messaging.options';
import type { PgClient } from '../interfaces/sql.interface';
import { connectWithin, deadline } from '../postgres/query-deadline';

/** The connection that LISTENs, while it does. */
interface Listener {
  /** A statement with a deadline: whether the connection still answers. */
  ping(): Promise<unknown>;
  /** Closes the connection (which ends its LISTEN); with an error, listens again after a back-off. */
  drop(error?: Error): void;
}

/**
 * When the relay should look for rows: at once when a writer's transaction commits (LISTEN on a
 * connection of the pool held for it; the writer's NOTIFY comes with the COMMIT), and every
 * `pollIntervalMs` anyway, which covers rows written while the listening connection was down,
 * rows written without a notification and rows whose back-off ended. A lost listening
 * connection is opened again after a back-off; polling goes on meanwhile. A half-open one
 * reports nothing (notifications just stop): each poll also pings it, with a deadline.
 */
export class OutboxWakeups {
  private listener?: Listener;
  private pinging = false;
  private poll?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly outbox: Pick<ResolvedOutbox, 'pool' | 'pollIntervalMs' | 'queryTimeoutMs'>,
    private readonly channel: string,
    private readonly reconnect: { initialDelayMs: number; maxDelayMs: number },
    private readonly logger: Logger,
    private readonly wake: () => void,
  ) {}

  start(): void {
    this.poll = setInterval(() => {
      this.wake();
      this.checkListener();
    }, this.outbox.pollIntervalMs);
    this.poll.unref();
    void this.listen();
  }

  /** Immediate: the listening connection is closed, not UNLISTENed (a stalled PostgreSQL would never answer). */
  stop(): void {
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.reconnectTimer);
    this.listener?.drop();
  }

  /**
   * The listening connection is never given back to the pool (released with `true`, it is
   * closed): our listeners stay on a pg client object, which the pool would hand to others.
   */
  private async listen(): Promise<void> {
    const { pool, queryTimeoutMs } = this.outbox;
    let client: PgClient;
    try {
      client = await connectWithin(pool, queryTimeoutMs);
    } catch (error) {
      return this.retry(error as Error);
    }
    if (this.stopped) return client.release(true);
    let gone = false;
    const listener: Listener = {
      ping: () => deadline(client.query('SELECT 1'), queryTimeoutMs, 'a ping on the listening connection'),
      drop: (error) => {
        if (gone) return;
        gone = true;
        if (this.listener === listener) this.listener = undefined;
        client.release(error ?? true);
        if (error) this.retry(error);
      },
    };
    client.on('notification', ({ channel }) => channel === this.channel && this.wake());
    client.on('error', listener.drop);
    try {
      await deadline(client.query(`LISTEN "${this.channel}"`), queryTimeoutMs, 'LISTEN');
    } catch (error) {
      return listener.drop(error as Error);
    }
    if (this.stopped) return listener.drop();
    this.listener = listener;
    this.failures = 0;
    // What was committed while nobody listened.
    this.wake();
  }

  private checkListener(): void {
    const { listener } = this;
    if (!listener || this.pinging) return;
    this.pinging = true;
    listener
      .ping()
      .catch((error: Error) => listener.drop(error))
      .finally(() => (this.pinging = false));
  }

  private retry(error: Error): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.failures++, this.reconnect.initialDelayMs, this.reconnect.maxDelayMs);
    this.logger.warn(
      `Outbox relay cannot listen for new rows (${error.message}); polling every ${this.outbox.pollIntervalMs} ms, listening again in ${delay} ms`,
    );
    this.reconnectTimer = setTimeout(() => void this.listen(), delay);
    this.reconnectTimer.unref();
  }
}
