import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { ChannelClosedError } from '../../lib/transport/transport.errors';
import { transportFor } from '../../lib/transport/transport-for';
import type {
  ConfirmOutcome,
  Message,
  PublishProperties,
  TransportChannel,
  TransportConnection,
} from '../../lib/transport/transport.interface';
import { BROKER_URL, ON_MEMORY, waitFor } from '../support/broker';
import { brokerMajorVersion, deniesFeature } from '../support/rabbitmq-admin';

/**
 * RabbitMQ's raw semantics through the transport interface, run on the broker under test: the
 * same scenarios on RabbitMQ and on the memory broker, so the memory broker cannot drift from
 * RabbitMQ. Every name is unique and starts with `t-`; whatever a scenario declares is deleted
 * after it, and its connections are closed.
 */

const OPTIONS = { heartbeatSeconds: 10, connectionName: 'broker-semantics.spec', timeoutMs: 5000 };

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * How long a scenario waits for something the broker does by itself (a delivery, a dead letter, a
 * deletion) before it fails. They take milliseconds; this only bounds a failure.
 */
const PATIENCE_MS = 2000;

const until = (condition: () => boolean | Promise<boolean>, what: string) => waitFor(condition, what, PATIENCE_MS);

function closeOf(channel: TransportChannel): Promise<ChannelClosedError | undefined> {
  return new Promise((resolve) => channel.once('close', resolve));
}

function refusal(promise: Promise<unknown>): Promise<ChannelClosedError> {
  return promise.then(
    () => {
      throw new Error('expected a refusal');
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(ChannelClosedError);
      return error as ChannelClosedError;
    },
  );
}

/** What a refusal says, to compare the error an operation rejects with and the one its channel closes with. */
const said = (error: ChannelClosedError | undefined) => ({ code: error?.code, reason: error?.reason });

const text = (m: Message) => m.content.toString();

/**
 * RabbitMQ 4.3 refuses what the memory broker refuses always; a RabbitMQ that still permits it
 * (3.x, or 4.x before 4.3 without the test/rabbitmq4 configuration) skips those scenarios.
 */
const deniesTransientQueues = async () => ON_MEMORY || (await deniesFeature('transient_nonexcl_queues'));
/** Where RabbitMQ 3 and 4 differ, the memory broker is RabbitMQ 4. */
const rabbitmq3 = async () => !ON_MEMORY && (await brokerMajorVersion()) < 4;
/** CQv1 (x-queue-mode, x-queue-version 1) is gone from RabbitMQ 4.3 only: no 4.0.x node refuses it. */
const REFUSES_CQ_V1 = ON_MEMORY;

describe(`broker semantics (${ON_MEMORY ? 'memory' : 'RabbitMQ'})`, () => {
  const connections: TransportConnection[] = [];
  const queues = new Set<string>();
  const exchanges = new Set<string>();
  const run = randomBytes(4).toString('hex');
  let counter = 0;

  /** A unique queue name, deleted after the test. */
  const queueName = (role: string) => {
    const name = `t-${run}-${++counter}-${role}`;
    queues.add(name);
    return name;
  };
  const exchangeName = (role: string) => {
    const name = `t-${run}-${++counter}-${role}`;
    exchanges.add(name);
    return name;
  };
  /**
   * A unique name for an exclusive queue: not deleted by the cleanup but with its connection
   * (RabbitMQ does that just after the connection closed; until then, deleting it is refused).
   */
  const exclusiveName = (role: string) => `t-${run}-${++counter}-${role}`;

  async function connect(): Promise<TransportConnection> {
    const connection = await transportFor(BROKER_URL).connect(BROKER_URL, OPTIONS);
    connections.push(connection);
    return connection;
  }

  async function channel(options: { confirms?: boolean; on?: TransportConnection } = {}): Promise<TransportChannel> {
    const connection = options.on ?? (await connect());
    return connection.createChannel({ confirms: options.confirms });
  }

  /** Publishes and waits for the broker's answer, so the message is in its queues. */
  function confirmed(
    ch: TransportChannel,
    exchange: string,
    routingKey: string,
    body: string,
    props: PublishProperties = {},
  ): Promise<ConfirmOutcome> {
    return new Promise((resolve) => ch.publish(exchange, routingKey, Buffer.from(body), props, (_, outcome) => resolve(outcome)));
  }

  async function drain(ch: TransportChannel, queue: string): Promise<Message[]> {
    const got: Message[] = [];
    for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) got.push(m);
    return got;
  }

  /** The next message of a queue, once there: dead-lettering happens after the call that caused it. */
  async function arrival(ch: TransportChannel, queue: string, options = { noAck: true }): Promise<Message> {
    const got: Message[] = [];
    await until(async () => {
      const message = await ch.get(queue, options);
      if (message) got.push(message);
      return got.length > 0;
    }, `a message in ${queue}`);
    return got[0];
  }

  /**
   * Whether the default exchange routes to a queue (a mandatory publish comes back when not):
   * unlike a passive declare, a publish does not count as using the queue.
   */
  async function routable(ch: TransportChannel, queue: string): Promise<boolean> {
    let returned = false;
    const onReturn = () => (returned = true);
    ch.on('return', onReturn);
    await confirmed(ch, '', queue, 'probe', { mandatory: true });
    ch.off('return', onReturn);
    return !returned;
  }

  /**
   * The refusal of a passive declare once the broker deleted a queue by itself: RabbitMQ deletes
   * an auto-delete, x-expires or exclusive queue just after what caused it, not within that call.
   */
  async function deletion(conn: TransportConnection, queue: string): Promise<ChannelClosedError> {
    let refused: ChannelClosedError | undefined;
    await until(async () => {
      const ch = await conn.createChannel();
      try {
        await ch.checkQueue(queue);
        await ch.close();
      } catch (error) {
        if (!(error instanceof ChannelClosedError)) throw error;
        refused = error;
      }
      return refused !== undefined;
    }, `the deletion of ${queue}`);
    return refused!;
  }

  afterEach(async () => {
    // Connections first: an exclusive queue another connection holds cannot be deleted.
    for (const connection of connections.splice(0)) await connection.close().catch(() => undefined);
    const cleaner = await connect();
    try {
      const ch = await cleaner.createChannel();
      for (const q of queues) await ch.deleteQueue(q);
      for (const x of exchanges) await ch.deleteExchange(x);
    } finally {
      queues.clear();
      exchanges.clear();
      await cleaner.close();
      connections.length = 0;
    }
  });

  it('routes topic patterns: * one word, # zero or more, at either end and in the middle; once per queue', async () => {
    const ch = await channel({ confirms: true });
    const x = exchangeName('topic');
    await ch.assertExchange(x, 'topic', { durable: false });
    const patterns = ['a.*', '#.z', 'a.#', 'a.#.b', '#.b.#', '#'];
    const byPattern = new Map<string, string>();
    for (const pattern of patterns) {
      const q = queueName('topic');
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, x, pattern);
      byPattern.set(pattern, q);
    }
    // Two more bindings of the same queue that match too, and a repeated one: still one copy.
    await ch.bindQueue(byPattern.get('#')!, x, 'a.*');
    await ch.bindQueue(byPattern.get('#')!, x, '#');
    for (const key of ['a.b', 'a', 'a.x.y.b', 'z', 'q.z', 'a.b.c', 'b']) await confirmed(ch, x, key, key);
    const seen = async (pattern: string) => (await drain(ch, byPattern.get(pattern)!)).map(text);
    expect(await seen('a.*')).toEqual(['a.b']);
    expect(await seen('#.z')).toEqual(['z', 'q.z']);
    expect(await seen('a.#')).toEqual(['a.b', 'a', 'a.x.y.b', 'a.b.c']);
    expect(await seen('a.#.b')).toEqual(['a.b', 'a.x.y.b']);
    expect(await seen('#.b.#')).toEqual(['a.b', 'a.x.y.b', 'a.b.c', 'b']);
    expect(await seen('#')).toEqual(['a.b', 'a', 'a.x.y.b', 'z', 'q.z', 'a.b.c', 'b']);
  });

  it('routes headers exchanges with x-match all (default) and any, ignoring x- keys', async () => {
    const ch = await channel({ confirms: true });
    const x = exchangeName('headers');
    await ch.assertExchange(x, 'headers', { durable: false });
    const all = queueName('all');
    const any = queueName('any');
    await ch.assertQueue(all, { durable: true });
    await ch.assertQueue(any, { durable: true });
    await ch.bindQueue(all, x, '', { kind: 'order', region: 'eu', 'x-note': 'ignored' });
    await ch.bindQueue(any, x, '', { 'x-match': 'any', kind: 'order', region: 'eu' });
    await confirmed(ch, x, '', 'both', { headers: { kind: 'order', region: 'eu' } });
    await confirmed(ch, x, '', 'kind only', { headers: { kind: 'order' } });
    await confirmed(ch, x, '', 'wrong value', { headers: { kind: 'refund', region: 'us' } });
    expect((await drain(ch, all)).map(text)).toEqual(['both']);
    expect((await drain(ch, any)).map(text)).toEqual(['both', 'kind only']);
  });

  it('routes direct and fanout exchanges, and the default exchange by queue name', async () => {
    const ch = await channel({ confirms: true });
    const direct = exchangeName('direct');
    const fanout = exchangeName('fanout');
    await ch.assertExchange(direct, 'direct', { durable: false });
    await ch.assertExchange(fanout, 'fanout', { durable: false });
    const [q1, q2] = [queueName('one'), queueName('two')];
    for (const q of [q1, q2]) {
      await ch.assertQueue(q, { durable: true });
      await ch.bindQueue(q, fanout, '');
    }
    await ch.bindQueue(q1, direct, 'k');
    await confirmed(ch, direct, 'k', 'direct');
    await confirmed(ch, direct, 'other', 'lost');
    await confirmed(ch, fanout, 'anything', 'fanout');
    await confirmed(ch, '', q2, 'default');
    expect((await drain(ch, q1)).map(text)).toEqual(['direct', 'fanout']);
    expect((await drain(ch, q2)).map(text)).toEqual(['fanout', 'default']);
  });

  it("delivers, confirms and returns outside the publisher's async context (as from a socket)", async () => {
    const als = new AsyncLocalStorage<string>();
    const ch = await channel({ confirms: true });
    const q = queueName('context');
    await ch.assertQueue(q, { durable: true });
    const seen: Array<string | undefined> = [];
    const delivered = new Promise<void>((resolve) => {
      void ch.consume(q, (message) => {
        seen.push(`delivery ${als.getStore()}`);
        if (message) ch.ack(message);
        resolve();
      });
    });
    ch.once('return', () => seen.push(`return ${als.getStore()}`));
    await als.run('sender', async () => {
      const outcomes = [q, queueName('nowhere')].map(
        (target) =>
          new Promise<void>((resolve) =>
            ch.publish('', target, Buffer.from('x'), { mandatory: true }, () => (seen.push(`confirm ${als.getStore()}`), resolve())),
          ),
      );
      await Promise.all(outcomes);
    });
    await delivered;
    expect(seen.sort()).toEqual(['confirm undefined', 'confirm undefined', 'delivery undefined', 'return undefined']);
  });

  it('delivers every property key, copies the content at publish, persistent as deliveryMode 2', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('props');
    await ch.assertQueue(q, { durable: true });
    const content = Buffer.from('original');
    const sent = new Promise<ConfirmOutcome>((resolve) =>
      ch.publish(
        '',
        q,
        content,
        { persistent: true, expiration: 60000, messageId: 'm1', headers: { a: 1 }, contentType: 'text/plain' },
        resolve,
      ),
    );
    content.write('CHANGED!');
    await sent;
    const m = (await ch.get(q, { noAck: true })) as Message;
    expect(text(m)).toBe('original');
    expect(m.fields).toMatchObject({ redelivered: false, exchange: '', routingKey: q, messageCount: 0 });
    expect(Object.keys(m.properties).sort()).toEqual(
      [
        'appId',
        'clusterId',
        'contentEncoding',
        'contentType',
        'correlationId',
        'deliveryMode',
        'expiration',
        'headers',
        'messageId',
        'priority',
        'replyTo',
        'timestamp',
        'type',
        'userId',
      ].sort(),
    );
    expect(m.properties).toMatchObject({
      deliveryMode: 2,
      expiration: '60000',
      messageId: 'm1',
      headers: { a: 1 },
      contentType: 'text/plain',
      correlationId: undefined,
    });
  });

  it('throws, writing nothing, when a header table cannot be encoded (over 64 KiB); the channel stays', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('encode');
    await ch.assertQueue(q, { durable: true });
    const huge = { big: 'x'.repeat(70_000) };
    let error: unknown;
    try {
      ch.publish('', q, Buffer.from('too big'), { headers: huge }, () => undefined);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(Error);
    expect(error).not.toBeInstanceOf(ChannelClosedError);
    expect(await confirmed(ch, '', q, 'fine')).toBe('ack');
    expect((await drain(ch, q)).map(text)).toEqual(['fine']);
  });

  it('refuses an exchange redeclared with another type: 406, and the channel closes with that error', async () => {
    const ch = await channel();
    const x = exchangeName('typed');
    await ch.assertExchange(x, 'topic', { durable: false });
    const closed = closeOf(ch);
    const error = await refusal(ch.assertExchange(x, 'fanout', { durable: false }));
    expect(error.code).toBe(406);
    expect(error.reason).toBe(
      `PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${x}' in vhost '/': received 'fanout' but current is 'topic'`,
    );
    expect(said(await closed)).toEqual(said(error));
  });

  it('refuses a queue redeclared with other arguments or flags (406), taking an absent x-queue-type as classic', async () => {
    const conn = await connect();
    const q = queueName('args');
    const first = await conn.createChannel();
    expect(await first.assertQueue(q, { durable: true, arguments: { 'x-message-ttl': 1000 } })).toEqual({
      queue: q,
      messageCount: 0,
      consumerCount: 0,
    });
    await first.assertQueue(q, { durable: true, arguments: { 'x-message-ttl': 1000, 'x-queue-type': 'classic', 'x-unchecked': 1 } });
    const attempt = async (options: Parameters<TransportChannel['assertQueue']>[1]) =>
      refusal((await conn.createChannel()).assertQueue(q, options));
    const differs = await attempt({ durable: true, arguments: { 'x-message-ttl': 2000 } });
    expect(differs.code).toBe(406);
    expect(differs.reason).toBe(
      `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received '2000' but current is '1000'`,
    );
    const absent = await attempt({ durable: true });
    expect(absent.reason).toBe(
      `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received none but current is the value '1000' of type 'short'`,
    );
    const quorum = await attempt({ durable: true, arguments: { 'x-message-ttl': 1000, 'x-queue-type': 'quorum' } });
    expect(quorum.reason).toBe(
      (await rabbitmq3())
        ? `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received the value 'quorum' of type 'longstr' but current is none`
        : `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received 'quorum' but current is 'classic'`,
    );
    const autoDelete = await attempt({ durable: true, autoDelete: true, arguments: { 'x-message-ttl': 1000 } });
    expect(autoDelete.reason).toBe(
      `PRECONDITION_FAILED - inequivalent arg 'auto_delete' for queue '${q}' in vhost '/': received 'true' but current is 'false'`,
    );
  });

  it('closes the connection (541) on a queue neither durable nor exclusive, as RabbitMQ 4.3 does; nothing is declared', async (context) => {
    if (!(await deniesTransientQueues())) context.skip('this RabbitMQ permits transient non-exclusive queues (3.x, or 4.x before 4.3)');
    const conn = await connect();
    const closed = new Promise<(Error & { code?: number }) | undefined>((resolve) => conn.once('close', resolve));
    conn.on('error', () => undefined);
    const q = queueName('transient');
    const declared = await (await conn.createChannel()).assertQueue(q, { durable: false }).then(
      () => 'declared',
      () => 'refused',
    );
    expect(declared).toBe('refused');
    const error = await closed;
    expect(error?.code).toBe(541);
    expect(error?.message).toContain('INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated.');
    const other = await connect();
    expect((await refusal((await other.createChannel()).checkQueue(q))).code).toBe(404);
    // What stays allowed: transient exclusive, durable auto-delete, durable.
    const ch = await other.createChannel();
    await ch.assertQueue(exclusiveName('transient-exclusive'), { durable: false, exclusive: true });
    await ch.assertQueue(queueName('durable-auto-delete'), { durable: true, autoDelete: true });
    await ch.assertQueue(queueName('durable'), { durable: true });
  });

  it('refuses x-queue-mode on a quorum queue (406), which never had it', async () => {
    const q = queueName('quorum-mode');
    const refused = await refusal(
      (await channel()).assertQueue(q, { durable: true, arguments: { 'x-queue-type': 'quorum', 'x-queue-mode': 'lazy' } }),
    );
    expect(said(refused)).toEqual({
      code: 406,
      reason: `PRECONDITION_FAILED - invalid arg 'x-queue-mode' for queue '${q}' in vhost '/' of queue type rabbit_quorum_queue`,
    });
  });

  it.runIf(REFUSES_CQ_V1)('refuses x-queue-mode and x-queue-version 1 on a classic queue (406), as RabbitMQ 4.3 does', async () => {
    for (const [key, value] of [
      ['x-queue-mode', 'lazy'],
      ['x-queue-mode', 'default'],
      ['x-queue-version', 1],
    ] as const) {
      const q = queueName('classic-mode');
      const refused = await refusal((await channel()).assertQueue(q, { durable: true, arguments: { [key]: value } }));
      expect(said(refused)).toEqual({
        code: 406,
        reason: `PRECONDITION_FAILED - invalid arg '${key}' for queue '${q}' in vhost '/' of queue type rabbit_classic_queue`,
      });
    }
    await (await channel()).assertQueue(queueName('classic-v2'), { durable: true, arguments: { 'x-queue-version': 2 } });
  });

  it('locks an exclusive queue to its connection (405), and deletes it with that connection', async () => {
    const owner = await connect();
    const queue = exclusiveName('mine');
    const ch = await owner.createChannel();
    await ch.assertQueue(queue, { exclusive: true, durable: false });
    await ch.bindQueue(queue, 'amq.fanout', '');
    const other = await connect();
    const attempts: Array<(c: TransportChannel) => Promise<unknown>> = [
      (c) => c.assertQueue(queue, { exclusive: true, durable: false }),
      (c) => c.assertQueue(queue, { durable: true }),
      (c) => c.checkQueue(queue),
      (c) => c.consume(queue, () => undefined),
      (c) => c.get(queue),
      (c) => c.purgeQueue(queue),
      (c) => c.deleteQueue(queue),
      (c) => c.bindQueue(queue, 'amq.topic', '#'),
      (c) => c.unbindQueue(queue, 'amq.fanout', ''),
    ];
    for (const attempt of attempts) {
      expect(said(await refusal(attempt(await other.createChannel())))).toEqual({
        code: 405,
        reason:
          `RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue}' in vhost '/'. ` +
          'It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.',
      });
    }
    // Exclusivity is checked only for a binding that is there: unbinding nothing is fine.
    await (await other.createChannel()).unbindQueue(queue, 'amq.direct', 'none');
    await owner.close();
    expect((await deletion(other, queue)).code).toBe(404);
  });

  it('names a queue declared without a name amq.gen-*, a name no one may declare again (403), not even its owner', async () => {
    const conn = await connect();
    const { queue } = await (await conn.createChannel()).assertQueue('', { exclusive: true, durable: false });
    expect(queue).toMatch(/^amq\.gen-[\w-]{22}$/);
    const again = await refusal((await conn.createChannel()).assertQueue(queue, { exclusive: true, durable: false }));
    expect(said(again)).toEqual({ code: 403, reason: `ACCESS_REFUSED - queue name '${queue}' contains reserved prefix 'amq.*'` });
    expect(await (await conn.createChannel()).checkQueue(queue)).toEqual({ queue, messageCount: 0, consumerCount: 0 });
  });

  it('answers operations on missing queues and exchanges with 404, closing the channel; later calls fail without a code', async () => {
    const conn = await connect();
    const missing = `t-${run}-missing`;
    const attempts: Array<[(c: TransportChannel) => Promise<unknown>, string]> = [
      [(c) => c.checkQueue(missing), `NOT_FOUND - no queue '${missing}' in vhost '/'`],
      [(c) => c.checkExchange(missing), `NOT_FOUND - no exchange '${missing}' in vhost '/'`],
      [(c) => c.bindQueue(missing, 'amq.topic', '#'), `NOT_FOUND - no queue '${missing}' in vhost '/'`],
      [(c) => c.bindQueue(missing, missing, '#'), `NOT_FOUND - no exchange '${missing}' in vhost '/'`],
      [(c) => c.consume(missing, () => undefined), `NOT_FOUND - no queue '${missing}' in vhost '/'`],
      [(c) => c.get(missing), `NOT_FOUND - no queue '${missing}' in vhost '/'`],
      [(c) => c.purgeQueue(missing), `NOT_FOUND - no queue '${missing}' in vhost '/'`],
    ];
    for (const [attempt, reason] of attempts) {
      const ch = await conn.createChannel();
      const closed = closeOf(ch);
      const error = await refusal(attempt(ch));
      expect({ code: error.code, reason: error.reason }).toEqual({ code: 404, reason });
      expect(said(await closed)).toEqual(said(error));
      const later = await refusal(ch.checkQueue('amq.rabbitmq.reply-to'));
      expect(later.code).toBeUndefined();
      expect(() => ch.publish('', missing, Buffer.from('x'), {})).toThrow(ChannelClosedError);
    }
    // Deleting or unbinding what is not there is fine.
    const ch = await conn.createChannel();
    expect(await ch.deleteQueue(missing)).toEqual({ messageCount: 0 });
    await ch.deleteExchange(missing);
    await ch.unbindQueue(missing, 'amq.topic', '#');
  });

  it('refuses the default exchange (403) and names reserved for the broker', async () => {
    const conn = await connect();
    const q = queueName('q');
    await (await conn.createChannel()).assertQueue(q, { durable: true });
    for (const attempt of [(c: TransportChannel) => c.bindQueue(q, '', q), (c: TransportChannel) => c.deleteExchange('')]) {
      const error = await refusal(attempt(await conn.createChannel()));
      expect({ code: error.code, reason: error.reason }).toEqual({
        code: 403,
        reason: 'ACCESS_REFUSED - operation not permitted on the default exchange',
      });
    }
    const reserved = await refusal((await conn.createChannel()).assertQueue('amq.mine'));
    expect(reserved.reason).toBe("ACCESS_REFUSED - queue name 'amq.mine' contains reserved prefix 'amq.*'");
    await (await conn.createChannel()).assertExchange('amq.topic', 'topic');
  });

  it('closes the channel asynchronously when a publish names a missing exchange (404, publishExchange)', async () => {
    const ch = await channel({ confirms: true });
    const missing = `t-${run}-nowhere`;
    const closed = closeOf(ch);
    let outcome: ConfirmOutcome | undefined;
    expect(ch.publish(missing, 'k', Buffer.from('x'), {}, (_, o) => (outcome = o))).toBe(true);
    const error = await closed;
    expect(error).toBeInstanceOf(ChannelClosedError);
    expect({ code: error!.code, reason: error!.reason, publishExchange: error!.publishExchange }).toEqual({
      code: 404,
      reason: `NOT_FOUND - no exchange '${missing}' in vhost '/'`,
      publishExchange: missing,
    });
    expect(outcome).toBe('closed');
  });

  it('closes the channel on an unknown delivery tag (a message acked twice): 406', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('acks');
    await ch.assertQueue(q, { durable: true });
    await confirmed(ch, '', q, 'x');
    const m = (await ch.get(q)) as Message;
    const closed = closeOf(ch);
    ch.ack(m);
    ch.ack(m);
    const error = await closed;
    expect({ code: error?.code, reason: error?.reason }).toEqual({
      code: 406,
      reason: `PRECONDITION_FAILED - unknown delivery tag ${m.fields.deliveryTag}`,
    });
    expect(() => ch.ack(m)).toThrow(ChannelClosedError);
  });

  it('confirms in a later tick; returns an unroutable mandatory publish before its confirm', async () => {
    const ch = await channel({ confirms: true });
    const events: string[] = [];
    ch.on('return', (m: Message) => events.push(`return ${m.fields.exchange} ${m.fields.routingKey} ${text(m)}`));
    const done = new Promise<void>((resolve) =>
      ch.publish('amq.topic', `t-${run}.nobody`, Buffer.from('lost'), { mandatory: true }, (_, o) => {
        events.push(`confirm ${o}`);
        resolve();
      }),
    );
    expect(events).toEqual([]);
    await done;
    expect(events).toEqual([`return amq.topic t-${run}.nobody lost`, 'confirm ack']);
  });

  it('answers every unanswered confirm "closed" before the channel emits close', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('confirms');
    await ch.assertQueue(q, { durable: true });
    const events: string[] = [];
    ch.on('close', () => events.push('close'));
    ch.publish('', q, Buffer.from('1'), {}, (_, o) => events.push(o));
    ch.publish('', q, Buffer.from('2'), {}, (_, o) => events.push(o));
    await ch.close();
    expect(events).toEqual(['closed', 'closed', 'close']);
  });

  it('x-max-length drops the head into the dead-letter exchange (maxlen); reject-publish nacks', async () => {
    const ch = await channel({ confirms: true });
    const dlq = queueName('dlq');
    const q = queueName('capped');
    const strict = queueName('strict');
    await ch.assertQueue(dlq, { durable: true });
    await ch.assertQueue(q, {
      durable: true,
      arguments: { 'x-max-length': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
    });
    await ch.assertQueue(strict, { durable: true, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
    for (const body of ['1', '2', '3']) expect(await confirmed(ch, '', q, body)).toBe('ack');
    expect((await drain(ch, q)).map(text)).toEqual(['2', '3']);
    const dead = await drain(ch, dlq);
    expect(dead.map(text)).toEqual(['1']);
    expect(dead[0].properties.headers!['x-death'][0]).toMatchObject({ reason: 'maxlen', queue: q, count: 1 });
    expect(await confirmed(ch, '', strict, 'fits')).toBe('ack');
    expect(await confirmed(ch, '', strict, 'refused')).toBe('nack');
    expect((await drain(ch, strict)).map(text)).toEqual(['fits']);
  });

  it('limits unacked deliveries per consumer with prefetch, and delivers round-robin', async () => {
    const conn = await connect();
    const pub = await conn.createChannel({ confirms: true });
    const q = queueName('work');
    await pub.assertQueue(q, { durable: true });
    const ch = await conn.createChannel();
    await ch.prefetch(2);
    const a: Message[] = [];
    const b: Message[] = [];
    await ch.consume(q, (m) => a.push(m!));
    await ch.consume(q, (m) => b.push(m!));
    for (let i = 1; i <= 6; i++) await confirmed(pub, '', q, String(i));
    await until(() => a.length + b.length === 4, 'four deliveries');
    await sleep(20);
    expect(a.map(text)).toEqual(['1', '3']);
    expect(b.map(text)).toEqual(['2', '4']);
    ch.ack(a[0]);
    await until(() => a.length === 3, 'a third delivery to the first consumer');
    expect(text(a[2])).toBe('5');
    expect(b.length).toBe(2);
  });

  it('puts nacked messages back at the head in their order, redelivered', async () => {
    const conn = await connect();
    const pub = await conn.createChannel({ confirms: true });
    const q = queueName('requeue');
    await pub.assertQueue(q, { durable: true });
    for (const body of ['1', '2', '3']) await confirmed(pub, '', q, body);
    const ch = await conn.createChannel();
    await ch.prefetch(2);
    const got: Message[] = [];
    await ch.consume(q, (m) => got.push(m!));
    await until(() => got.length === 2, 'two deliveries');
    ch.nack(got[1], true);
    await until(() => got.length === 4, 'two redeliveries');
    expect(got.slice(2).map((m) => [text(m), m.fields.redelivered])).toEqual([
      ['1', true],
      ['2', true],
    ]);
    ch.ack(got[3], true);
    await until(() => got.length === 5, 'the third message');
    expect([text(got[4]), got[4].fields.redelivered]).toEqual(['3', false]);
  });

  it('dead-letters a nack without requeue, with x-death and x-first-death headers', async () => {
    const ch = await channel({ confirms: true });
    const dlx = exchangeName('dlx');
    const dlq = queueName('dlq');
    const q = queueName('source');
    await ch.assertExchange(dlx, 'fanout', { durable: false });
    await ch.assertQueue(dlq, { durable: true });
    await ch.bindQueue(dlq, dlx, '');
    await ch.assertQueue(q, { durable: true, arguments: { 'x-dead-letter-exchange': dlx } });
    await confirmed(ch, '', q, 'bad', { headers: { mine: 'kept' }, expiration: 60000 });
    ch.nack((await ch.get(q)) as Message, false, false);
    const m = await arrival(ch, dlq);
    expect(m.fields).toMatchObject({ exchange: dlx, routingKey: q, redelivered: false });
    expect(m.properties.expiration).toBeUndefined();
    const headers = m.properties.headers!;
    expect(headers.mine).toBe('kept');
    expect(headers['x-death']).toEqual([
      {
        count: 1,
        reason: 'rejected',
        queue: q,
        time: { '!': 'timestamp', value: expect.any(Number) },
        exchange: '',
        'routing-keys': [q],
        'original-expiration': '60000',
      },
    ]);
    expect(headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-queue': q, 'x-first-death-exchange': '' });
  });

  it('counts a repeated death in its x-death entry, latest first, its keys sorted (a retry loop through a delay queue)', async () => {
    const ch = await channel({ confirms: true });
    const work = queueName('work');
    const delay = queueName('delay');
    await ch.assertQueue(work, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': delay } });
    await ch.assertQueue(delay, {
      durable: true,
      arguments: { 'x-message-ttl': 5, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': work },
    });
    await confirmed(ch, '', work, 'retried');
    for (let attempt = 1; attempt <= 2; attempt++) ch.nack(await arrival(ch, work, { noAck: false }), false, false);
    const headers = (await arrival(ch, work)).properties.headers!;
    const deaths = headers['x-death'] as Array<Record<string, unknown>>;
    expect(deaths.map((d) => [d.queue, d.reason, d.count])).toEqual([
      [delay, 'expired', 2],
      [work, 'rejected', 2],
    ]);
    // RabbitMQ 3.x sorted the keys of an entry it updated; 4 keeps them as written.
    const keys = (await rabbitmq3())
      ? ['count', 'exchange', 'queue', 'reason', 'routing-keys', 'time']
      : ['count', 'reason', 'queue', 'time', 'exchange', 'routing-keys'];
    for (const death of deaths) expect(Object.keys(death)).toEqual(keys);
    expect(headers).toMatchObject({ 'x-first-death-reason': 'rejected', 'x-first-death-queue': work });
  });

  it('expires messages at the head by queue TTL and by per-message expiration, into the dead-letter exchange; never delivers them', async () => {
    const ch = await channel({ confirms: true });
    const dlq = queueName('expired');
    const byQueue = queueName('queue-ttl');
    const byMessage = queueName('message-ttl');
    await ch.assertQueue(dlq, { durable: true });
    await ch.assertQueue(byQueue, {
      durable: true,
      arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
    });
    await ch.assertQueue(byMessage, { durable: true, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
    await confirmed(ch, '', byQueue, 'queue ttl');
    await confirmed(ch, '', byMessage, 'message ttl', { expiration: 10 });
    await confirmed(ch, '', byMessage, 'forever');
    const dead = [await arrival(ch, dlq), await arrival(ch, dlq)];
    expect(dead.map(text).sort()).toEqual(['message ttl', 'queue ttl']);
    for (const m of dead) expect(m.properties.headers!['x-death'][0].reason).toBe('expired');
    const fromMessage = dead.find((m) => text(m) === 'message ttl')!;
    expect(fromMessage.properties.expiration).toBeUndefined();
    expect(fromMessage.properties.headers!['x-death'][0]['original-expiration']).toBe('10');
    expect((await drain(ch, byMessage)).map(text)).toEqual(['forever']);
  });

  it('direct reply-to: a round trip, and its two refusals', async () => {
    const conn = await connect();
    const q = queueName('rpc');
    const server = await conn.createChannel();
    await server.assertQueue(q, { durable: true });
    await server.consume(q, (m) => {
      server.publish('', m!.properties.replyTo!, Buffer.from(`re: ${text(m!)}`), { correlationId: m!.properties.correlationId });
      server.ack(m!);
    });
    const client = await conn.createChannel();
    const replies: Message[] = [];
    await client.consume('amq.rabbitmq.reply-to', (m) => replies.push(m!), { noAck: true });
    client.publish('', q, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c1' });
    await until(() => replies.length === 1, 'the reply');
    expect(text(replies[0])).toBe('re: ping');
    expect(replies[0].properties.correlationId).toBe('c1');
    expect(replies[0].fields.routingKey).toMatch(/^amq\.rabbitmq\.reply-to\../);

    const acking = await refusal((await conn.createChannel()).consume('amq.rabbitmq.reply-to', () => undefined));
    expect({ code: acking.code, reason: acking.reason }).toEqual({
      code: 406,
      reason: 'PRECONDITION_FAILED - reply consumer cannot acknowledge',
    });
    const stranger = await conn.createChannel();
    const closed = closeOf(stranger);
    stranger.publish('', q, Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
    const error = await closed;
    expect({ code: error?.code, reason: error?.reason }).toEqual({
      code: 406,
      reason: 'PRECONDITION_FAILED - fast reply consumer does not exist',
    });
  });

  it('requeues a closed channel’s unacked messages, in order and redelivered; a cancelled consumer keeps its unacked', async () => {
    const conn = await connect();
    const pub = await conn.createChannel({ confirms: true });
    const q = queueName('unacked');
    await pub.assertQueue(q, { durable: true });
    for (const body of ['1', '2', '3']) await confirmed(pub, '', q, body);
    const first = await conn.createChannel();
    const got: Message[] = [];
    const { consumerTag } = await first.consume(q, (m) => got.push(m!));
    await until(() => got.length === 3, 'three deliveries');
    await first.cancel(consumerTag);
    first.ack(got[2]);
    expect((await pub.checkQueue(q)).messageCount).toBe(0);
    await first.close();
    await until(async () => (await pub.checkQueue(q)).messageCount === 2, 'the unacked back in the queue');
    const again = await drain(pub, q);
    expect(again.map((m) => [text(m), m.fields.redelivered])).toEqual([
      ['1', true],
      ['2', true],
    ]);
  });

  it('get returns the ready count left, or false; assertQueue counts ready messages and consumers', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('get');
    await ch.assertQueue(q, { durable: true });
    for (const body of ['1', '2', '3']) await confirmed(ch, '', q, body);
    const m = (await ch.get(q)) as Message;
    expect([text(m), m.fields.messageCount]).toEqual(['1', 2]);
    expect(await ch.assertQueue(q, { durable: true })).toEqual({ queue: q, messageCount: 2, consumerCount: 0 });
    await ch.purgeQueue(q);
    expect(await ch.get(q)).toBe(false);
  });

  it('deletes an auto-delete queue when its last consumer goes, cancelling nobody else; deleteQueue cancels consumers with null', async () => {
    const conn = await connect();
    const ch = await conn.createChannel();
    const auto = queueName('auto');
    await ch.assertQueue(auto, { durable: true, autoDelete: true });
    const { consumerTag } = await ch.consume(auto, () => undefined);
    expect((await ch.checkQueue(auto)).consumerCount).toBe(1);
    await ch.cancel(consumerTag);
    expect((await deletion(conn, auto)).code).toBe(404);

    const q = queueName('deleted');
    const other = await conn.createChannel();
    await other.assertQueue(q, { durable: true });
    const calls: Array<Message | null> = [];
    await other.consume(q, (m) => calls.push(m));
    await (await conn.createChannel()).deleteQueue(q);
    await until(() => calls.length === 1, 'the cancel');
    expect(calls).toEqual([null]);
  });

  it("renews a classic queue's x-expires on each declare, not a quorum queue's: that one expires with its messages", async () => {
    const conn = await connect();
    const ch = await conn.createChannel({ confirms: true });
    const classic = queueName('expires-classic');
    const quorum = queueName('expires-quorum');
    const declare = async (q: string, type: string) =>
      (await ch.assertQueue(q, { durable: true, arguments: { 'x-expires': 500, 'x-queue-type': type } })).messageCount;
    await declare(classic, 'classic');
    await declare(quorum, 'quorum');
    await confirmed(ch, '', classic, 'kept');
    await confirmed(ch, '', quorum, 'gone with its queue');
    const started = Date.now();
    let quorumCount = 1;
    let classicCount = 1;
    // Declared again every 100 ms: a use for a classic queue only. A quorum queue expired
    // meanwhile is declared anew, empty.
    while (quorumCount > 0 && Date.now() - started < 8_000) {
      await sleep(100);
      classicCount = await declare(classic, 'classic');
      quorumCount = await declare(quorum, 'quorum');
    }
    expect(quorumCount).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(classicCount).toBe(1);
  });

  it('deletes an x-expires queue left unused; a passive declare is a use, renewing its lease', async () => {
    const ch = await channel({ confirms: true });
    const q = queueName('expires');
    // A lease of 1 s, used every 50 ms for 2.5 s: alive only if each use renewed it. (A lease of
    // 200 ms failed under CI's load, when one pause between two uses outlasted it.)
    await ch.assertQueue(q, { durable: true, arguments: { 'x-expires': 1_000 } });
    const kept = Date.now() + 2_500;
    while (Date.now() < kept) {
      await ch.checkQueue(q);
      await sleep(50);
    }
    await waitFor(async () => !(await routable(ch, q)), `the deletion of ${q}`, 10_000);
  });
});
