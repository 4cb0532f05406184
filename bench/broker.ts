/** A plain amqplib side connection used by the harness itself: readiness, draining, clean-up. */
import * as amqp from 'amqplib';

/**
 * The queues one run may leave: its own, plus what nestjs-messaging derives from it (dead-letter and
 * retry queues for its default retry policy). Anything else under the run's prefix is swept at the end.
 */
export const runQueues = (queue: string) => [queue, `${queue}.dlq`, `${queue}.retry.1000ms`, `${queue}.retry.5000ms`];

type Conn = Awaited<ReturnType<typeof amqp.connect>>;

export class Broker {
  private ch?: amqp.Channel;
  private constructor(private readonly conn: Conn) {
    conn.on('error', () => undefined);
  }

  static async connect(url: string): Promise<Broker> {
    return new Broker(await amqp.connect(url, { noDelay: true }));
  }

  /** e.g. "RabbitMQ 3.10.8" */
  get serverVersion(): string {
    const props = (this.conn as any).connection?.serverProperties ?? {};
    return `${props.product ?? 'broker'} ${props.version ?? '?'}`;
  }

  /** A channel that is reopened after a channel-level error (e.g. checkQueue of a missing queue). */
  private async channel(): Promise<amqp.Channel> {
    if (!this.ch) {
      const ch = await this.conn.createChannel();
      ch.on('error', () => undefined);
      ch.on('close', () => {
        if (this.ch === ch) this.ch = undefined;
      });
      this.ch = ch;
    }
    return this.ch;
  }

  private async tryOp<T>(op: (ch: amqp.Channel) => Promise<T>): Promise<T | undefined> {
    try {
      return await op(await this.channel());
    } catch {
      this.ch = undefined;
      return undefined;
    }
  }

  /** Resolves once the queue exists and has at least one consumer. */
  async waitForConsumer(queue: string, timeoutMs = 15_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const ok = await this.tryOp((ch) => ch.checkQueue(queue));
      if (ok && ok.consumerCount > 0) return;
      if (Date.now() > deadline) throw new Error(`no consumer on ${queue} after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Takes every ready message off the queue; returns the parsed `id` of each. */
  async drain(queue: string): Promise<number[]> {
    const ids: number[] = [];
    for (;;) {
      const msg = await this.tryOp((ch) => ch.get(queue, { noAck: true }));
      if (!msg) return ids;
      try {
        const body = JSON.parse(msg.content.toString());
        ids.push(typeof body.id === 'number' ? body.id : body.data?.id); // Nest wraps as {pattern, data}
      } catch {
        ids.push(NaN);
      }
    }
  }

  async deleteQueues(names: string[]): Promise<void> {
    for (const name of names) await this.tryOp((ch) => ch.deleteQueue(name));
  }

  async deleteExchanges(names: string[]): Promise<void> {
    for (const name of names) await this.tryOp((ch) => ch.deleteExchange(name));
  }

  async close(): Promise<void> {
    try {
      await this.conn.close();
    } catch {
      /* already closed */
    }
  }
}
