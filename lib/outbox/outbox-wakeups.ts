import type { Logger } from '@nestjs/common';
import { backoffDelay } from '../connection/backoff';
import type { PgClient, PgPool } from './postgres';

/**
 * When the relay should look for rows: at once when a writer's transaction commits (LISTEN on a
 * connection of the pool held for it; the writer's NOTIFY comes with the COMMIT), and every
 * `pollIntervalMs` anyway, which covers rows written while the listening connection was down,
 * rows written without a notification and rows whose back-off ended. A lost listening
 * connection is opened again after a back-off; polling goes on meanwhile.
 */
export class OutboxWakeups {
  private listener?: { client: PgClient; close: () => Promise<void> };
  private poll?: NodeJS.Timeout;
  private reconnectTimer?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;

  constructor(
    private readonly pool: PgPool,
    private readonly channel: string,
    private readonly pollIntervalMs: number,
    private readonly reconnect: { initialDelayMs: number; maxDelayMs: number },
    private readonly logger: Logger,
    private readonly wake: () => void,
  ) {}

  start(): void {
    this.poll = setInterval(this.wake, this.pollIntervalMs);
    this.poll.unref();
    void this.listen();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.poll);
    clearTimeout(this.reconnectTimer);
    await this.listener?.close();
  }

  /**
   * The listening connection is never given back to the pool (released with `true`, it is
   * closed): our listeners stay on a pg client object, which the pool would hand to others.
   */
  private async listen(): Promise<void> {
    let client: PgClient;
    try {
      client = await this.pool.connect();
    } catch (error) {
      return this.retry(error as Error);
    }
    let gone = false;
    const drop = (error: Error) => {
      if (gone) return;
      gone = true;
      if (this.listener?.client === client) this.listener = undefined;
      client.release(true);
      this.retry(error);
    };
    client.on('notification', ({ channel }) => channel === this.channel && this.wake());
    client.on('error', drop);
    try {
      await client.query(`LISTEN "${this.channel}"`);
    } catch (error) {
      return drop(error as Error);
    }
    const close = async () => {
      if (gone) return;
      gone = true;
      this.listener = undefined;
      await client.query(`UNLISTEN "${this.channel}"`).catch(() => undefined);
      client.release(true);
    };
    if (this.stopped) return close();
    this.listener = { client, close };
    this.failures = 0;
    // What was committed while nobody listened.
    this.wake();
  }

  private retry(error: Error): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.failures++, this.reconnect.initialDelayMs, this.reconnect.maxDelayMs);
    this.logger.warn(`Outbox relay cannot listen for new rows (${error.message}); polling every ${this.pollIntervalMs} ms, listening again in ${delay} ms`);
    this.reconnectTimer = setTimeout(() => void this.listen(), delay);
    this.reconnectTimer.unref();
  }
}
