import { randomBytes } from 'node:crypto';
import { memoryBrokerFor, memoryTransport } from '../../lib/transport/memory/memory.transport';
import { ChannelClosedError } from '../../lib/transport/transport.errors';
import type { ConfirmOutcome, Message, PublishProperties, TransportChannel, TransportConnection } from '../../lib/transport/transport.interface';

/**
 * The memory broker through the transport interface only. The scenarios take a connect function
 * and a URL, so the same ones can run on RabbitMQ (amqp transport, amqp://...) for parity: every
 * name is unique and starts with `t-`, and whatever a scenario declares is deleted after it.
 */

const OPTIONS = { heartbeatSeconds: 10, connectionName: 'memory-broker.spec', timeoutMs: 1000 };

interface Target {
  label: string;
  url: string;
  connect(url: string): Promise<TransportConnection>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(condition: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await sleep(2);
  }
}

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

const text = (m: Message) => m.content.toString();

function brokerScenarios(target: Target): void {
  describe(`broker semantics (${target.label})`, () => {
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

    async function connect(): Promise<TransportConnection> {
      const connection = await target.connect(target.url);
      connections.push(connection);
      return connection;
    }

    async function channel(options: { confirms?: boolean; on?: TransportConnection } = {}): Promise<TransportChannel> {
      const connection = options.on ?? (await connect());
      return connection.createChannel({ confirms: options.confirms });
    }

    /** Publishes and waits for the broker's answer, so the message is in its queues. */
    function confirmed(ch: TransportChannel, exchange: string, routingKey: string, body: string, props: PublishProperties = {}): Promise<ConfirmOutcome> {
      return new Promise((resolve) => ch.publish(exchange, routingKey, Buffer.from(body), props, resolve));
    }

    async function drain(ch: TransportChannel, queue: string): Promise<Message[]> {
      const got: Message[] = [];
      for (let m = await ch.get(queue, { noAck: true }); m; m = await ch.get(queue, { noAck: true })) got.push(m);
      return got;
    }

    /** The next message of a queue, once there: dead-lettering happens after the call that caused it. */
    async function arrival(ch: TransportChannel, queue: string): Promise<Message> {
      const deadline = Date.now() + 1000;
      for (;;) {
        const message = await ch.get(queue, { noAck: true });
        if (message) return message;
        if (Date.now() > deadline) throw new Error(`nothing arrived in ${queue}`);
        await sleep(2);
      }
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
        await ch.assertQueue(q, { durable: false });
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
      await ch.assertQueue(all, { durable: false });
      await ch.assertQueue(any, { durable: false });
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
        await ch.assertQueue(q, { durable: false });
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

    it('delivers every property key, copies the content at publish, persistent as deliveryMode 2', async () => {
      const ch = await channel({ confirms: true });
      const q = queueName('props');
      await ch.assertQueue(q, { durable: false });
      const content = Buffer.from('original');
      const sent = new Promise<ConfirmOutcome>((resolve) =>
        ch.publish('', q, content, { persistent: true, expiration: 60000, messageId: 'm1', headers: { a: 1 }, contentType: 'text/plain' }, resolve),
      );
      content.write('CHANGED!');
      await sent;
      const m = (await ch.get(q, { noAck: true })) as Message;
      expect(text(m)).toBe('original');
      expect(m.fields).toMatchObject({ redelivered: false, exchange: '', routingKey: q, messageCount: 0 });
      expect(Object.keys(m.properties).sort()).toEqual(
        ['appId', 'clusterId', 'contentEncoding', 'contentType', 'correlationId', 'deliveryMode', 'expiration', 'headers', 'messageId', 'priority', 'replyTo', 'timestamp', 'type', 'userId'].sort(),
      );
      expect(m.properties).toMatchObject({ deliveryMode: 2, expiration: '60000', messageId: 'm1', headers: { a: 1 }, contentType: 'text/plain', correlationId: undefined });
    });

    it('throws, writing nothing, when a header table cannot be encoded (over 64 KiB); the channel stays', async () => {
      const ch = await channel({ confirms: true });
      const q = queueName('encode');
      await ch.assertQueue(q, { durable: false });
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
      expect(error.reason).toBe(`PRECONDITION_FAILED - inequivalent arg 'type' for exchange '${x}' in vhost '/': received 'fanout' but current is 'topic'`);
      expect(await closed).toBe(error);
    });

    it('refuses a queue redeclared with other arguments or flags (406), taking an absent x-queue-type as classic', async () => {
      const conn = await connect();
      const q = queueName('args');
      const first = await conn.createChannel();
      expect(await first.assertQueue(q, { durable: false, arguments: { 'x-message-ttl': 1000 } })).toEqual({ queue: q, messageCount: 0, consumerCount: 0 });
      await first.assertQueue(q, { durable: false, arguments: { 'x-message-ttl': 1000, 'x-queue-type': 'classic', 'x-unchecked': 1 } });
      const attempt = async (options: Parameters<TransportChannel['assertQueue']>[1]) => refusal((await conn.createChannel()).assertQueue(q, options));
      const differs = await attempt({ durable: false, arguments: { 'x-message-ttl': 2000 } });
      expect(differs.code).toBe(406);
      expect(differs.reason).toBe(`PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received '2000' but current is '1000'`);
      const absent = await attempt({ durable: false });
      expect(absent.reason).toBe(
        `PRECONDITION_FAILED - inequivalent arg 'x-message-ttl' for queue '${q}' in vhost '/': received none but current is the value '1000' of type 'short'`,
      );
      const quorum = await attempt({ durable: false, arguments: { 'x-message-ttl': 1000, 'x-queue-type': 'quorum' } });
      expect(quorum.reason).toBe(
        `PRECONDITION_FAILED - inequivalent arg 'x-queue-type' for queue '${q}' in vhost '/': received the value 'quorum' of type 'longstr' but current is none`,
      );
      const durable = await attempt({ durable: true, arguments: { 'x-message-ttl': 1000 } });
      expect(durable.reason).toBe(`PRECONDITION_FAILED - inequivalent arg 'durable' for queue '${q}' in vhost '/': received 'true' but current is 'false'`);
    });

    it('locks an exclusive queue to its connection (405), and deletes it with that connection', async () => {
      const owner = await connect();
      const ch = await owner.createChannel();
      const { queue } = await ch.assertQueue('', { exclusive: true, durable: false });
      queues.add(queue);
      expect(queue).toMatch(/^amq\.gen-/);
      const other = await connect();
      const attempts: Array<(c: TransportChannel) => Promise<unknown>> = [
        (c) => c.assertQueue(queue, { exclusive: true, durable: false }),
        (c) => c.consume(queue, () => undefined),
        (c) => c.get(queue),
        (c) => c.deleteQueue(queue),
        (c) => c.bindQueue(queue, 'amq.fanout', ''),
      ];
      for (const attempt of attempts) {
        const error = await refusal(attempt(await other.createChannel()));
        expect(error.code).toBe(405);
        expect(error.reason).toMatch(new RegExp(`^RESOURCE_LOCKED - cannot obtain exclusive access to locked queue '${queue.replace(/\./g, '\\.')}' in vhost '/'`));
      }
      await owner.close();
      const gone = await refusal((await other.createChannel()).checkQueue(queue));
      expect(gone.code).toBe(404);
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
        expect(await closed).toBe(error);
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
      await (await conn.createChannel()).assertQueue(q, { durable: false });
      for (const attempt of [(c: TransportChannel) => c.bindQueue(q, '', q), (c: TransportChannel) => c.deleteExchange('')]) {
        const error = await refusal(attempt(await conn.createChannel()));
        expect({ code: error.code, reason: error.reason }).toEqual({ code: 403, reason: 'ACCESS_REFUSED - operation not permitted on the default exchange' });
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
      expect(ch.publish(missing, 'k', Buffer.from('x'), {}, (o) => (outcome = o))).toBe(true);
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
      await ch.assertQueue(q, { durable: false });
      await confirmed(ch, '', q, 'x');
      const m = (await ch.get(q)) as Message;
      const closed = closeOf(ch);
      ch.ack(m);
      ch.ack(m);
      const error = await closed;
      expect({ code: error?.code, reason: error?.reason }).toEqual({ code: 406, reason: `PRECONDITION_FAILED - unknown delivery tag ${m.fields.deliveryTag}` });
      expect(() => ch.ack(m)).toThrow(ChannelClosedError);
    });

    it('confirms in a later tick; returns an unroutable mandatory publish before its confirm', async () => {
      const ch = await channel({ confirms: true });
      const events: string[] = [];
      ch.on('return', (m: Message) => events.push(`return ${m.fields.exchange} ${m.fields.routingKey} ${text(m)}`));
      const done = new Promise<void>((resolve) =>
        ch.publish('amq.topic', `t-${run}.nobody`, Buffer.from('lost'), { mandatory: true }, (o) => {
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
      await ch.assertQueue(q, { durable: false });
      const events: string[] = [];
      ch.on('close', () => events.push('close'));
      ch.publish('', q, Buffer.from('1'), {}, (o) => events.push(o));
      ch.publish('', q, Buffer.from('2'), {}, (o) => events.push(o));
      await ch.close();
      expect(events).toEqual(['closed', 'closed', 'close']);
    });

    it('x-max-length drops the head into the dead-letter exchange (maxlen); reject-publish nacks', async () => {
      const ch = await channel({ confirms: true });
      const dlq = queueName('dlq');
      const q = queueName('capped');
      const strict = queueName('strict');
      await ch.assertQueue(dlq, { durable: false });
      await ch.assertQueue(q, { durable: false, arguments: { 'x-max-length': 2, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
      await ch.assertQueue(strict, { durable: false, arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' } });
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
      await pub.assertQueue(q, { durable: false });
      const ch = await conn.createChannel();
      await ch.prefetch(2);
      const a: Message[] = [];
      const b: Message[] = [];
      await ch.consume(q, (m) => a.push(m!));
      await ch.consume(q, (m) => b.push(m!));
      for (let i = 1; i <= 6; i++) await confirmed(pub, '', q, String(i));
      await waitFor(() => a.length + b.length === 4);
      await sleep(20);
      expect(a.map(text)).toEqual(['1', '3']);
      expect(b.map(text)).toEqual(['2', '4']);
      ch.ack(a[0]);
      await waitFor(() => a.length === 3);
      expect(text(a[2])).toBe('5');
      expect(b.length).toBe(2);
    });

    it('puts nacked messages back at the head in their order, redelivered', async () => {
      const conn = await connect();
      const pub = await conn.createChannel({ confirms: true });
      const q = queueName('requeue');
      await pub.assertQueue(q, { durable: false });
      for (const body of ['1', '2', '3']) await confirmed(pub, '', q, body);
      const ch = await conn.createChannel();
      await ch.prefetch(2);
      const got: Message[] = [];
      await ch.consume(q, (m) => got.push(m!));
      await waitFor(() => got.length === 2);
      ch.nack(got[1], true);
      await waitFor(() => got.length === 4);
      expect(got.slice(2).map((m) => [text(m), m.fields.redelivered])).toEqual([
        ['1', true],
        ['2', true],
      ]);
      ch.ack(got[3], true);
      await waitFor(() => got.length === 5);
      expect([text(got[4]), got[4].fields.redelivered]).toEqual(['3', false]);
    });

    it('dead-letters a nack without requeue, with x-death and x-first-death headers', async () => {
      const ch = await channel({ confirms: true });
      const dlx = exchangeName('dlx');
      const dlq = queueName('dlq');
      const q = queueName('source');
      await ch.assertExchange(dlx, 'fanout', { durable: false });
      await ch.assertQueue(dlq, { durable: false });
      await ch.bindQueue(dlq, dlx, '');
      await ch.assertQueue(q, { durable: false, arguments: { 'x-dead-letter-exchange': dlx } });
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

    it('expires messages at the head by queue TTL and by per-message expiration, into the dead-letter exchange; never delivers them', async () => {
      const ch = await channel({ confirms: true });
      const dlq = queueName('expired');
      const byQueue = queueName('queue-ttl');
      const byMessage = queueName('message-ttl');
      await ch.assertQueue(dlq, { durable: false });
      await ch.assertQueue(byQueue, { durable: false, arguments: { 'x-message-ttl': 10, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
      await ch.assertQueue(byMessage, { durable: false, arguments: { 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq } });
      await confirmed(ch, '', byQueue, 'queue ttl');
      await confirmed(ch, '', byMessage, 'message ttl', { expiration: 10 });
      await confirmed(ch, '', byMessage, 'forever');
      await sleep(40);
      const dead = await drain(ch, dlq);
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
      await server.assertQueue(q, { durable: false });
      await server.consume(q, (m) => {
        server.publish('', m!.properties.replyTo!, Buffer.from(`re: ${text(m!)}`), { correlationId: m!.properties.correlationId });
        server.ack(m!);
      });
      const client = await conn.createChannel();
      const replies: Message[] = [];
      await client.consume('amq.rabbitmq.reply-to', (m) => replies.push(m!), { noAck: true });
      client.publish('', q, Buffer.from('ping'), { replyTo: 'amq.rabbitmq.reply-to', correlationId: 'c1' });
      await waitFor(() => replies.length === 1);
      expect(text(replies[0])).toBe('re: ping');
      expect(replies[0].properties.correlationId).toBe('c1');
      expect(replies[0].fields.routingKey).toMatch(/^amq\.rabbitmq\.reply-to\../);

      const acking = await refusal((await conn.createChannel()).consume('amq.rabbitmq.reply-to', () => undefined));
      expect({ code: acking.code, reason: acking.reason }).toEqual({ code: 406, reason: 'PRECONDITION_FAILED - reply consumer cannot acknowledge' });
      const stranger = await conn.createChannel();
      const closed = closeOf(stranger);
      stranger.publish('', q, Buffer.from('x'), { replyTo: 'amq.rabbitmq.reply-to' });
      const error = await closed;
      expect({ code: error?.code, reason: error?.reason }).toEqual({ code: 406, reason: 'PRECONDITION_FAILED - fast reply consumer does not exist' });
    });

    it('requeues a closed channel’s unacked messages, in order and redelivered; a cancelled consumer keeps its unacked', async () => {
      const conn = await connect();
      const pub = await conn.createChannel({ confirms: true });
      const q = queueName('unacked');
      await pub.assertQueue(q, { durable: false });
      for (const body of ['1', '2', '3']) await confirmed(pub, '', q, body);
      const first = await conn.createChannel();
      const got: Message[] = [];
      const { consumerTag } = await first.consume(q, (m) => got.push(m!));
      await waitFor(() => got.length === 3);
      await first.cancel(consumerTag);
      first.ack(got[2]);
      expect((await pub.checkQueue(q)).messageCount).toBe(0);
      await first.close();
      const again = await drain(pub, q);
      expect(again.map((m) => [text(m), m.fields.redelivered])).toEqual([
        ['1', true],
        ['2', true],
      ]);
    });

    it('get returns the ready count left, or false; assertQueue counts ready messages and consumers', async () => {
      const ch = await channel({ confirms: true });
      const q = queueName('get');
      await ch.assertQueue(q, { durable: false });
      for (const body of ['1', '2', '3']) await confirmed(ch, '', q, body);
      const m = (await ch.get(q)) as Message;
      expect([text(m), m.fields.messageCount]).toEqual(['1', 2]);
      expect(await ch.assertQueue(q, { durable: false })).toEqual({ queue: q, messageCount: 2, consumerCount: 0 });
      await ch.purgeQueue(q);
      expect(await ch.get(q)).toBe(false);
    });

    it('deletes an auto-delete queue when its last consumer goes, cancelling nobody else; deleteQueue cancels consumers with null', async () => {
      const conn = await connect();
      const ch = await conn.createChannel();
      const auto = queueName('auto');
      await ch.assertQueue(auto, { durable: false, autoDelete: true });
      const { consumerTag } = await ch.consume(auto, () => undefined);
      expect((await ch.checkQueue(auto)).consumerCount).toBe(1);
      await ch.cancel(consumerTag);
      const gone = await refusal((await conn.createChannel()).checkQueue(auto));
      expect(gone.code).toBe(404);

      const q = queueName('deleted');
      const other = await conn.createChannel();
      await other.assertQueue(q, { durable: false });
      const calls: Array<Message | null> = [];
      await other.consume(q, (m) => calls.push(m));
      await (await conn.createChannel()).deleteQueue(q);
      await waitFor(() => calls.length === 1);
      expect(calls).toEqual([null]);
    });

    it('deletes an x-expires queue left unused', async () => {
      const ch = await channel();
      const q = queueName('expires');
      await ch.assertQueue(q, { durable: false, arguments: { 'x-expires': 20 } });
      await sleep(60);
      const error = await refusal(ch.checkQueue(q));
      expect(error.code).toBe(404);
    });
  });
}

brokerScenarios({ label: 'memory', url: 'memory://spec', connect: (url) => memoryTransport.connect(url, OPTIONS) });

describe('memory broker: addressing and harness hooks', () => {
  const connect = (url: string, name = 'spec') => memoryTransport.connect(url, { ...OPTIONS, connectionName: name });

  it('shares one broker per name: memory:// with memory://, not memory://x with memory://y', async () => {
    const [a, b, x, y] = await Promise.all([connect('memory://'), connect('memory://'), connect('memory://x'), connect('memory://y')]);
    const q = `t-share-${randomBytes(4).toString('hex')}`;
    await (await a.createChannel()).assertQueue(q, { durable: false });
    expect((await (await b.createChannel()).checkQueue(q)).queue).toBe(q);
    await (await x.createChannel()).assertQueue(q, { durable: false });
    expect((await refusal((await y.createChannel()).checkQueue(q))).code).toBe(404);
    expect(memoryBrokerFor('memory://')).toBe(memoryBrokerFor('memory://default'));
    expect((globalThis as Record<symbol, Map<string, unknown>>)[Symbol.for('nestjs-messaging.memory-brokers')].get('x')).toBe(memoryBrokerFor('memory://x'));
    await (await a.createChannel()).deleteQueue(q);
    await (await x.createChannel()).deleteQueue(q);
    await Promise.all([a, b, x, y].map((c) => c.close()));
  });

  it('reports ready, unacked, confirms and dispatching in stats()', async () => {
    const url = `memory://stats-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    const ch = await conn.createChannel({ confirms: true });
    await ch.assertQueue('work', { durable: false });
    await ch.assertQueue('idle', { durable: false });
    let answered = 0;
    ch.publish('', 'work', Buffer.from('1'), {}, () => answered++);
    ch.publish('', 'idle', Buffer.from('2'), {}, () => answered++);
    expect(broker.stats()).toEqual({ ready: 0, unacked: 0, confirms: 2, dispatching: true });
    await waitFor(() => answered === 2);
    const got: Message[] = [];
    const consumer = await conn.createChannel();
    await consumer.consume('work', (m) => got.push(m!));
    await waitFor(() => got.length === 1);
    expect(broker.stats()).toEqual({ ready: 0, unacked: 1, confirms: 0, dispatching: false });
    ch.publish('', 'work', Buffer.from('3'), {});
    await consumer.prefetch(0);
    consumer.ack(got[0]);
    await waitFor(() => got.length === 2);
    consumer.ack(got[1]);
    expect(broker.stats()).toMatchObject({ ready: 0, unacked: 0, confirms: 0 });
    expect(broker.queues()).toEqual([
      { queue: 'work', messageCount: 0, consumerCount: 1 },
      { queue: 'idle', messageCount: 1, consumerCount: 0 },
    ]);
    expect(broker.publishes().map((p) => [p.routingKey, p.content.toString(), p.queues])).toEqual([
      ['work', '1', ['work']],
      ['idle', '2', ['idle']],
      ['work', '3', ['work']],
    ]);
    await conn.close();
  });

  it('releaseDelayed dead-letters waiting delayed messages now, and leaves consumed queues alone', async () => {
    const url = `memory://delays-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    const ch = await conn.createChannel({ confirms: true });
    await ch.assertQueue('target', { durable: false });
    const delay = { 'x-message-ttl': 60_000, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': 'target' };
    await ch.assertQueue('delay', { durable: false, arguments: delay });
    await ch.assertQueue('consumed', { durable: false, arguments: delay });
    await ch.consume('consumed', () => undefined);
    ch.publish('', 'delay', Buffer.from('later'), {});
    ch.publish('', 'consumed', Buffer.from('held'), {});
    broker.releaseDelayed();
    const m = (await ch.get('target')) as Message;
    expect(text(m)).toBe('later');
    expect(m.properties.headers!['x-death'][0]).toMatchObject({ reason: 'expired', queue: 'delay' });
    expect(await ch.get('target')).toBe(false);
    await conn.close();
  });

  it('dropConnections closes connections from the broker side: the connection with an error, its channels without', async () => {
    const url = `memory://drops-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const keep = await connect(url, 'keep');
    const drop = await connect(url, 'drop');
    const ch = await drop.createChannel();
    const connectionClosed = new Promise<Error | undefined>((resolve) => drop.once('close', resolve));
    const channelClosed = closeOf(ch);
    expect(broker.connections()).toEqual([{ name: 'keep' }, { name: 'drop' }]);
    expect(broker.dropConnections((c) => c.name === 'drop')).toBe(1);
    expect(await connectionClosed).toBeInstanceOf(Error);
    expect(await channelClosed).toBeUndefined();
    expect(broker.connections()).toEqual([{ name: 'keep' }]);
    await keep.close();
  });

  it('survives thousands of channels opened and closed without keeping them', async () => {
    const url = `memory://churn-${randomBytes(4).toString('hex')}`;
    const broker = memoryBrokerFor(url);
    const conn = await connect(url);
    for (let i = 0; i < 2000; i++) {
      const ch = await conn.createChannel({ confirms: true });
      await ch.assertQueue('q', { durable: false });
      ch.publish('', 'q', Buffer.from(String(i)), {}, () => undefined);
      await ch.close();
    }
    expect([...(conn as unknown as { openChannels(): Iterable<unknown> }).openChannels()]).toEqual([]);
    expect(broker.stats()).toMatchObject({ confirms: 0, unacked: 0 });
    expect(conn.listenerCount('close')).toBe(0);
    await conn.close();
  });
});
