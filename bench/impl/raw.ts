/**
 * Raw amqplib, as a competent engineer writes it by hand: one connection (TCP_NODELAY), a
 * ConfirmChannel for one-way publishes, a consumer channel with prefetch and one ack per message,
 * RPC over direct reply-to with a Map of correlation ids, and a graceful close (cancel, drain,
 * close channels so acks flush, then the connection).
 */
import * as amqp from 'amqplib';
import { Adapter, Msg, SetupOptions } from './types';

const REPLY_TO = 'amq.rabbitmq.reply-to';
const RPC_TIMEOUT_MS = 30_000;

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export function create(): Adapter {
  let o: SetupOptions;
  let conn: Awaited<ReturnType<typeof amqp.connect>>;
  let pub: amqp.ConfirmChannel;
  let cons: amqp.Channel;
  let rpc: amqp.Channel;
  let consumerTag = '';
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  let nextCorrelation = 0;
  const pending = new Map<string, Pending>();

  async function handle(msg: amqp.ConsumeMessage): Promise<void> {
    inFlight++;
    try {
      const result = await o.handler(JSON.parse(msg.content.toString()));
      const { replyTo, correlationId } = msg.properties;
      if (replyTo) cons.sendToQueue(replyTo, Buffer.from(JSON.stringify(result ?? null)), { correlationId });
      cons.ack(msg);
    } catch {
      cons.nack(msg, false, true);
    } finally {
      if (--inFlight === 0 && onIdle) onIdle();
    }
  }

  return {
    async setup(options) {
      o = options;
      conn = await amqp.connect(o.url, o.noDelay ? { noDelay: true } : {});
      pub = await conn.createConfirmChannel();
      cons = await conn.createChannel();
      await cons.assertQueue(o.queue, { durable: true });
      await cons.prefetch(o.prefetch);
      rpc = await conn.createChannel();
      await rpc.consume(
        REPLY_TO,
        (msg) => {
          if (!msg) return;
          const p = pending.get(msg.properties.correlationId);
          if (!p) return;
          pending.delete(msg.properties.correlationId);
          clearTimeout(p.timer);
          p.resolve(JSON.parse(msg.content.toString()));
        },
        { noAck: true },
      );
      consumerTag = (await cons.consume(o.queue, (msg) => msg && void handle(msg))).consumerTag;
    },

    publishOne(payload: Msg) {
      return new Promise<void>((resolve, reject) => {
        pub.sendToQueue(
          o.queue,
          Buffer.from(JSON.stringify(payload)),
          { persistent: o.persistent, contentType: 'application/json' },
          (err) => (err ? reject(err) : resolve()),
        );
      });
    },

    request(payload: Msg) {
      const correlationId = String(++nextCorrelation);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(correlationId);
          reject(new Error('RPC timeout'));
        }, RPC_TIMEOUT_MS);
        pending.set(correlationId, { resolve, reject, timer });
        rpc.sendToQueue(o.queue, Buffer.from(JSON.stringify(payload)), {
          correlationId,
          replyTo: REPLY_TO,
          contentType: 'application/json',
        });
      });
    },

    async close() {
      await cons.cancel(consumerTag);
      if (inFlight > 0) await new Promise<void>((r) => (onIdle = r));
      await cons.close(); // flushes the acks before the connection goes
      await pub.waitForConfirms();
      await pub.close();
      for (const [, p] of pending) {
        clearTimeout(p.timer);
        p.reject(new Error('closed'));
      }
      pending.clear();
      await rpc.close();
      await conn.close();
    },
  };
}
