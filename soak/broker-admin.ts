/**
 * What the soak driver does to the broker, limited to what the soak owns: connections whose
 * connection_name starts with the soak's prefix, and queues/exchanges named under it. The memory
 * alarm is the one broker-wide act; the driver restores the watermark it read first.
 */
import * as amqp from 'amqplib';
import { listConnections, rabbitmqctl } from '../test/support/rabbitmq-admin';

export { brokerMajorVersion, rabbitmqctl, readWatermark, setWatermark } from '../test/support/rabbitmq-admin';

/** Broker pids of the connections whose connection_name starts with `prefix`. */
export async function connectionsStartingWith(prefix: string): Promise<Array<{ pid: string; name: string }>> {
  return (await listConnections()).filter(({ name }) => name.startsWith(prefix));
}

/**
 * Per quorum queue, the messages it dead-lettered at-least-once that no target queue has
 * confirmed yet (e.g. retry copies whose handler queue was away): they are in no queue's message
 * count, yet the broker still holds them and delivers them later. 0 for a missing or classic queue.
 */
export async function heldForDeadLettering(queues: string[]): Promise<number[]> {
  const names = queues.map((q) => `<<"${q}">>`).join(', ');
  const raw = await rabbitmqctl(
    'eval',
    `[case rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, N)) of {ok, Q} -> case rabbit_amqqueue:info(Q, [messages_dlx]) of [{_, C}] when is_integer(C) -> C; _ -> 0 end; _ -> 0 end || N <- [${names}]].`,
  );
  const counts = (raw.match(/\d+/g) ?? []).map(Number);
  if (counts.length !== queues.length) throw new Error(`Cannot parse held dead-letter counts "${raw.trim()}"`);
  return counts;
}

/** A raw connection of the driver's own, for inspecting and deleting the soak's queues. */
export class Admin {
  private constructor(private readonly connection: amqp.ChannelModel) {}

  static async open(url: string): Promise<Admin> {
    const connection = await amqp.connect(url, { clientProperties: { connection_name: 'soak-driver-admin' } });
    connection.on('error', () => undefined);
    return new Admin(connection);
  }

  /** Runs `work` on a channel of its own, so a refusal (404, 406) closes only that channel. */
  async on<T>(work: (channel: amqp.Channel) => Promise<T>): Promise<T> {
    const channel = await this.connection.createChannel();
    channel.on('error', () => undefined);
    try {
      return await work(channel);
    } finally {
      await channel.close().catch(() => undefined);
    }
  }

  /** Ready messages in a queue, or undefined when it does not exist. */
  async depth(queue: string): Promise<number | undefined> {
    return this.on((c) => c.checkQueue(queue)).then(
      (ok) => ok.messageCount,
      () => undefined,
    );
  }

  /** Deletes a queue; resolves with how many ready messages went with it. */
  async deleteQueue(queue: string): Promise<number> {
    return this.on((c) => c.deleteQueue(queue)).then(
      (ok) => ok.messageCount,
      () => 0,
    );
  }

  /** Takes every ready message off a queue (acked); none if it does not exist. */
  async takeAll(queue: string): Promise<amqp.GetMessage[]> {
    return this.on(async (channel) => {
      const out: amqp.GetMessage[] = [];
      for (let m = await channel.get(queue, { noAck: true }); m; m = await channel.get(queue, { noAck: true })) out.push(m);
      return out;
    }).catch(() => []);
  }

  async close(): Promise<void> {
    await this.connection.close().catch(() => undefined);
  }
}
