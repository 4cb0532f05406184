/**
 * Raw amqplib, as a competent engineer writes it by hand: one connection (TCP_NODELAY), a
 * ConfirmChannel for one-way publishes, a consumer channel per queue with prefetch and one ack per message,
 * RPC over direct reply-to with a Map of correlation ids, and a graceful close (cancel, drain,
 * close channels so acks flush, then the connection).
 */
import { AsyncLocalStorage } from 'async_hooks';
import { randomUUID } from 'crypto';
import * as amqp from 'amqplib';
import { Adapter, Msg, SetupOptions } from './types';

const REPLY_TO = 'amq.rabbitmq.reply-to';
const RPC_TIMEOUT_MS = 30_000;

/**
 * Variant `wire` (the bounds of S1-S4): what nestjs-messaging must do per message on top, written
 * by hand — a message id, `x-origin` and `x-request-id` headers (on requests and replies too), the
 * handler run in an AsyncLocalStorage context holding the request id (what TrackContext needs),
 * requests that expire with their timeout and are mandatory (what RpcClient.request promises),
 * each one-way publish kept (bytes and properties) until its confirm, so that a channel lost before
 * then could write it again (what send() promises: nothing lost), and replies that say what they
 * answer (`x-causation-id`, the request's message id: TrackContext.causationId) and their content type.
 */
const context = new AsyncLocalStorage<{ requestId: unknown }>();
const wireHeaders = (id: string) => ({ 'x-origin': 'bench', 'x-request-id': id });

/**
 * Which parts of that work the `wire` variant does: all by default; BENCH_WIRE_PARTS=id,headers,als,request,keep,reply
 * (a subset) splits the bound into what each part costs (docs/performance.md).
 */
const WIRE_PARTS = new Set((process.env.BENCH_WIRE_PARTS ?? 'id,headers,als,request,keep,reply').split(','));
const wire = {
  id: WIRE_PARTS.has('id'),
  headers: WIRE_PARTS.has('headers'),
  als: WIRE_PARTS.has('als'),
  request: WIRE_PARTS.has('request'),
  keep: WIRE_PARTS.has('keep'),
  reply: WIRE_PARTS.has('reply'),
};

/** A send's properties with the wire parts on. */
function wireSend<T extends object>(base: T): T & amqp.Options.Publish {
  const id = wire.id ? randomUUID() : undefined;
  return { ...base, messageId: id, headers: wire.headers ? wireHeaders(id ?? 'bench') : undefined };
}

/** A request's: a send's, expiring with its timeout and mandatory. */
function wireRequest<T extends object>(base: T): T & amqp.Options.Publish {
  return wire.request ? { ...wireSend(base), expiration: String(RPC_TIMEOUT_MS), mandatory: true } : wireSend(base);
}

/** A reply's: its own id, the request's request id, and (part `reply`) what it answers and its content type. */
function wireReply(correlationId: string, request: amqp.ConsumeMessage): amqp.Options.Publish {
  const headers: Record<string, unknown> | undefined = wire.headers
    ? wireHeaders(String(request.properties.headers?.['x-request-id']))
    : undefined;
  if (headers && wire.reply) headers['x-causation-id'] = request.properties.messageId;
  return {
    correlationId,
    messageId: wire.id ? randomUUID() : undefined,
    headers,
    ...(wire.reply ? { contentType: 'application/json' } : {}),
  };
}

type Kept = { queue: string; content: Buffer; properties: amqp.Options.Publish };
type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout };

export function create(): Adapter {
  let o: SetupOptions;
  let conn: Awaited<ReturnType<typeof amqp.connect>>;
  let pub: amqp.ConfirmChannel;
  let rpc: amqp.Channel;
  const consumers: Array<{ channel: amqp.Channel; consumerTag: string }> = [];
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  let nextCorrelation = 0;
  const pending = new Map<string, Pending>();
  /**
   * Part `keep`: what a lost channel would have to write again, until each one's confirm. In slots
   * of an array, not a Set: V8 rebuilds a Set's table as entries come and go and links each old
   * table to its successor, and one of them dead in the old generation keeps all later ones, and
   * every publish they held, alive through young-generation collections (lib/util/slot-set.ts).
   */
  const unconfirmed: Array<Kept | undefined> = [];
  const freeSlots: number[] = [];

  async function handle(cons: amqp.Channel, msg: amqp.ConsumeMessage): Promise<void> {
    inFlight++;
    try {
      const payload = JSON.parse(msg.content.toString());
      const result = await (o.variant === 'wire' && wire.als
        ? context.run({ requestId: msg.properties.headers?.['x-request-id'] }, o.handler, payload)
        : o.handler(payload));
      const { replyTo, correlationId } = msg.properties;
      if (replyTo) {
        const reply = Buffer.from(JSON.stringify(result ?? null));
        cons.sendToQueue(replyTo, reply, o.variant === 'wire' ? wireReply(correlationId, msg) : { correlationId });
      }
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
      conn = await amqp.connect(o.url, {
        ...(o.noDelay ? { noDelay: true } : {}),
        ...(o.connectionName ? { clientProperties: { connection_name: o.connectionName } } : {}),
      });
      pub = await conn.createConfirmChannel();
      const channels: Array<[string, amqp.Channel]> = [];
      for (const queue of o.queues ?? [o.queue]) {
        const cons = await conn.createChannel();
        await cons.assertQueue(queue, { durable: true, ...(o.queueType ? { arguments: { 'x-queue-type': o.queueType } } : {}) });
        await cons.prefetch(o.prefetch);
        channels.push([queue, cons]);
      }
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
      for (const [queue, channel] of channels) {
        const { consumerTag } = await channel.consume(queue, (msg) => msg && void handle(channel, msg));
        consumers.push({ channel, consumerTag });
      }
    },

    publishOne(payload: Msg, queue = o.queue) {
      const base = { persistent: o.persistent, contentType: 'application/json' };
      const content = Buffer.from(JSON.stringify(payload));
      if (o.variant === 'wire' && wire.keep) {
        const slot = freeSlots.length > 0 ? freeSlots.pop()! : unconfirmed.length;
        const kept = { queue, content, properties: wireSend(base) };
        unconfirmed[slot] = kept;
        return new Promise<void>((resolve, reject) => {
          pub.sendToQueue(queue, content, kept.properties, (err) => {
            unconfirmed[slot] = undefined;
            freeSlots.push(slot);
            return err ? reject(err) : resolve();
          });
        });
      }
      return new Promise<void>((resolve, reject) => {
        pub.sendToQueue(queue, content, o.variant === 'wire' ? wireSend(base) : base, (err) => (err ? reject(err) : resolve()));
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
        const base = { correlationId, replyTo: REPLY_TO, contentType: 'application/json' };
        rpc.sendToQueue(o.queue, Buffer.from(JSON.stringify(payload)), o.variant === 'wire' ? wireRequest(base) : base);
      });
    },

    async close() {
      for (const { channel, consumerTag } of consumers) await channel.cancel(consumerTag);
      if (inFlight > 0) await new Promise<void>((r) => (onIdle = r));
      for (const { channel } of consumers) await channel.close(); // flushes the acks before the connection goes
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
