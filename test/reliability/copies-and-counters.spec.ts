import { Injectable } from '@nestjs/common';
import type { Message as GetMessage } from '../../lib/transport/transport.interface';
import { MessageHandler, RpcClient, type MessageContext, type MessagingOptions } from '../../lib';
import { appModule } from '../support/app';
import { TcpProxy } from '../support/tcp-proxy';
import { deferred, rabbitmqctl, unique, waitFor } from '../support/broker';
import { CaptureLogger, closeConnections, connectionsOf, drainUntil, faultRig, sleep, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md round 2, the consumer's share: 32 (retry, dead-letter, redelivery and reply copies
 * are never lost), 33 (routing survives retries), 34 (hostile counters), 39 (requeues that are not
 * the message's fault do not count toward the poison limit) and the queue type of retry and
 * dead-letter queues (44).
 */
describe('reliability: copies and counters', () => {
  const rig = faultRig();

  async function start(options: Partial<MessagingOptions>, providers: unknown[]) {
    const logger = new CaptureLogger();
    const app = await startAppLogged(
      appModule({ serviceName: unique('svc-copies'), ...options }, { providers: providers as never[] }),
      logger,
    );
    rig.apps.push(app);
    return { app, client: app.get(RpcClient), logger };
  }

  /** Queues whose name starts with `prefix`, with their type and ready messages (works for exclusive queues too). */
  async function queuesLike(prefix: string): Promise<Array<{ name: string; type: string; messages: number }>> {
    const out = await rabbitmqctl('list_queues', 'name', 'type', 'messages');
    return out
      .split('\n')
      .map((line) => line.trim().split(/\s+/))
      .filter(([name]) => name?.startsWith(prefix))
      .map(([name, type, messages]) => ({ name, type, messages: Number(messages) }));
  }

  const lost = (logger: CaptureLogger, role: string) =>
    logger.lines.some((line) => line.message.includes(`The ${role} connection`) && line.message.includes('was lost'));

  const header = (message: GetMessage, name: string): unknown => message.properties.headers?.[name];

  /** A handler on `queue` that answers every request (`retry: false`), counting its calls. */
  function replier(queue: string) {
    let calls = 0;
    @Injectable()
    class Replier {
      @MessageHandler({ queue, retry: false })
      handle() {
        calls++;
        return { total: 42 };
      }
    }
    return { Replier, calls: () => calls };
  }

  describe('33: routing survives retries', () => {
    it('context.exchange / routingKey are those of the first publish on every try, and the dead letter records them', async () => {
      const exchange = rig.broker.exchange(unique('routing-x'));
      const queue = rig.broker.queue(unique('routing'), [50]);
      const seen: Array<{ exchange: string; routingKey: string; attempt: number }> = [];
      @Injectable()
      class Routed {
        @MessageHandler({ queue, exchange, routingKey: 'order.created', retry: { attempts: 3, delaysMs: [50, 0] } })
        handle(_payload: unknown, context: MessageContext) {
          seen.push({ exchange: context.exchange, routingKey: context.routingKey, attempt: context.attempt });
          throw new Error('fails every time');
        }
      }
      const { client } = await start({}, [Routed]);
      await client.publish(exchange, 'order.created', { n: 1 });
      const [dead, ...extra] = await drainUntil(rig.broker, `${queue}.dlq`, 1);
      console.log(`[reliability 33] tries seen: ${JSON.stringify(seen)}; dead letter: ${JSON.stringify(dead.properties.headers)}`);
      expect(extra).toHaveLength(0);
      expect(seen).toEqual([1, 2, 3].map((attempt) => ({ exchange, routingKey: 'order.created', attempt })));
      expect(header(dead, 'x-original-exchange')).toBe(exchange);
      expect(header(dead, 'x-original-routing-key')).toBe('order.created');
    });
  });

  describe('32: copies are never lost', () => {
    it('a retry queue deleted by an operator: every retry copy still comes back (sent = handled)', async () => {
      const queue = rig.broker.queue(unique('gone-retry'), [100]);
      const tally = new Tally();
      @Injectable()
      class FailsOnce {
        @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [100] } })
        handle(_payload: unknown, context: MessageContext) {
          if (context.attempt === 1) throw new Error('transient');
          tally.see(context.messageId);
        }
      }
      const { client } = await start({}, [FailsOnce]);
      await rig.broker.channel.deleteQueue(`${queue}.retry.100ms`);
      const sent = 10;
      const ids = await Promise.all(Array.from({ length: sent }, (_, i) => client.send(queue, { i })));
      await waitFor(() => tally.handled.size === sent, 'every message to be handled on its second try', 8_000).catch(() => undefined);
      const figures = {
        sent,
        handled: tally.handled.size,
        queued: await rig.broker.depth(queue),
        deadLettered: await rig.broker.depth(`${queue}.dlq`),
      };
      console.log(`[reliability 32] retry queue deleted: ${JSON.stringify(figures)}`);
      expect(figures.handled + figures.queued + figures.deadLettered).toBe(sent);
      expect([...tally.handled].sort()).toEqual([...ids].sort());
    });

    it('a dead-letter queue deleted by an operator: every dead letter still lands in it', async () => {
      const queue = rig.broker.queue(unique('gone-dlq'), []);
      @Injectable()
      class AlwaysFails {
        @MessageHandler({ queue, retry: false })
        handle() {
          throw new Error('never works');
        }
      }
      const { client } = await start({}, [AlwaysFails]);
      await rig.broker.channel.deleteQueue(`${queue}.dlq`);
      const sent = 10;
      await Promise.all(Array.from({ length: sent }, (_, i) => client.send(queue, { i })));
      let dead: GetMessage[] = [];
      dead = await drainUntil(rig.broker, `${queue}.dlq`, sent, 8_000).catch(() => dead);
      const figures = { sent, handled: 0, queued: await rig.broker.depth(queue), deadLettered: dead.length };
      console.log(`[reliability 32] dead-letter queue deleted: ${JSON.stringify(figures)}`);
      expect(figures.queued + figures.deadLettered).toBe(sent);
      expect(dead).toHaveLength(sent);
    });

    it('a broadcast handler: a retry copy waiting while the consumer reconnects still comes back', async () => {
      const serviceName = unique('svc-bcast');
      const exchange = rig.broker.exchange(unique('bcast-x'));
      const base = unique('bcast');
      const calls: number[] = [];
      const handled = deferred();
      @Injectable()
      class Listener {
        @MessageHandler({
          queue: base,
          exchange,
          routingKey: 'config.changed',
          broadcast: true,
          retry: { attempts: 2, delaysMs: [10_000] },
        })
        handle(_payload: unknown, context: MessageContext) {
          calls.push(context.attempt);
          if (context.attempt === 1) throw new Error('not ready yet');
          handled.resolve();
        }
      }
      try {
        const { client } = await start({ serviceName, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [Listener]);
        // rabbitmqctl takes ~2 s a call, hence the long retry delay and the connection looked up first.
        const [consumer] = await connectionsOf(serviceName, 'consumer');
        await client.publish(exchange, 'config.changed', { v: 1 });
        await waitFor(async () => (await queuesLike(`${base}.retry.`))[0]?.messages === 1, 'the retry copy to wait in its retry queue');
        await rabbitmqctl('close_connection', consumer.pid, 'reliability test: consumer reconnect');
        const outcome = await Promise.race([handled.promise.then(() => 'handled'), sleep(15_000).then(() => 'lost')]);
        console.log(`[reliability 32] broadcast retry across a reconnect: ${outcome}, tries ${JSON.stringify(calls)}`);
        expect(outcome).toBe('handled');
        expect(calls).toEqual([1, 2]);
      } finally {
        for (const { name } of await queuesLike(base)) rig.broker.queue(name, []);
      }
    }, 40_000);

    it('a reply to a named queue that does not exist: the request is dead-lettered with UnroutableError, not dropped', async () => {
      const queue = rig.broker.queue(unique('replier'), []);
      const replies = unique('replies-gone');
      const { Replier, calls } = replier(queue);
      const { client } = await start({}, [Replier]);
      const id = await client.send(queue, { n: 1 }, { replyTo: replies });
      let dead: GetMessage[] = [];
      dead = await drainUntil(rig.broker, `${queue}.dlq`, 1, 4_000).catch(() => dead);
      console.log(`[reliability 32] reply to a missing queue: handler calls ${calls()}, dead-lettered ${dead.length}`);
      expect(dead).toHaveLength(1);
      expect(dead[0].properties.messageId).toBe(id);
      expect(header(dead[0], 'x-error-name')).toBe('UnroutableError');
      expect(String(header(dead[0], 'x-error-message'))).toContain(replies);
    });

    it('a request no try can handle, whose reply queue does not exist: one dead letter saying why it was refused, not a second for its reply', async () => {
      const queue = rig.broker.queue(unique('refused-request'), []);
      const replies = unique('replies-gone');
      const { Replier, calls } = replier(queue);
      const { logger } = await start({}, [Replier]);
      // Undecodable: dead-lettered at once, and its caller is told why (a reply that cannot go).
      rig.broker.publishRaw(queue, '{not json', {
        contentType: 'application/json',
        messageId: 'undecodable-request',
        correlationId: 'call-1',
        replyTo: replies,
      });
      const dead = await drainUntil(rig.broker, `${queue}.dlq`, 1, 4_000);
      await sleep(300); // a window for a second dead letter, if there were one
      const more = await rig.broker.drainQueue(`${queue}.dlq`);
      const unanswered = logger.lines.filter((line) => line.message.includes('could not be answered')).length;
      console.log(
        `[reliability 32] refused request, reply queue missing: letters ${dead.length + more.length} (${[...dead, ...more].map((m) => header(m, 'x-error-name')).join(', ')}), "could not be answered" logged ${unanswered} times`,
      );
      expect(calls()).toBe(0);
      expect(dead).toHaveLength(1);
      expect(more).toEqual([]);
      expect(header(dead[0], 'x-error-name')).toBe('DecodeError');
      expect(unanswered).toBe(1);
    });

    it('a reply to a missing queue whose dead-letter queue refuses the letter for a while: the reply is not tried (nor logged) again, only the letter', async () => {
      const queue = rig.broker.queue(unique('unanswered-held'), []);
      const replies = unique('replies-gone');
      const { Replier, calls } = replier(queue);
      const { logger, client } = await start({ reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [Replier]);
      // An operator replaces the dead-letter queue with one that refuses every publish (nack).
      const dlq = `${queue}.dlq`;
      await rig.broker.channel.deleteQueue(dlq);
      await rig.broker.channel.assertQueue(dlq, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      const failed = () => logger.lines.filter((line) => line.message.includes('could not be recorded')).length;
      const id = await client.send(queue, { n: 1 }, { replyTo: replies });
      await waitFor(() => failed() >= 3, 'the letter refused three times');
      // The operator puts it right: the copy comes back unroutable, the queue is declared again.
      await rig.broker.channel.deleteQueue(dlq);
      const dead = await drainUntil(rig.broker, dlq, 1, 8_000);
      const unanswered = logger.lines.filter((line) => line.message.includes('could not be answered')).length;
      console.log(
        `[reliability 32] reply to a missing queue, letter refused ${failed()} times: handler calls ${calls()}, "could not be answered" logged ${unanswered} times`,
      );
      expect(calls()).toBe(1);
      expect(dead).toHaveLength(1);
      expect(dead[0].properties.messageId).toBe(id);
      expect(header(dead[0], 'x-error-name')).toBe('UnroutableError');
      expect(unanswered).toBe(1);
    }, 30_000);
  });

  describe('34: hostile counters', () => {
    it('x-attempts that is negative, fractional, huge, a string or an array: every message gets its tries, with the policy delays', async () => {
      const queue = rig.broker.queue(unique('hostile-attempts'), [50, 100]);
      const calls = new Map<string, Array<{ attempt: number; at: number }>>();
      @Injectable()
      class Counted {
        @MessageHandler({ queue, retry: { attempts: 3, delaysMs: [50, 100] } })
        handle(_payload: unknown, context: MessageContext) {
          const list = calls.get(context.messageId!) ?? [];
          list.push({ attempt: context.attempt, at: Date.now() });
          calls.set(context.messageId!, list);
          throw new Error('always fails');
        }
      }
      await start({}, [Counted]);
      const hostile: Record<string, unknown> = {
        negative: -1,
        // Doubles on the wire (amqplib writes an integral number as a 64-bit integer). NaN and
        // infinities are left out: RabbitMQ cannot decode them and closes the connection (541).
        'huge-negative': { '!': 'double', value: -1e308 },
        huge: { '!': 'double', value: 1e308 },
        'max-safe': Number.MAX_SAFE_INTEGER,
        fraction: 1.5,
        string: '2',
        array: [2],
        // 51: values inside the range the module writes itself, set by a producer (forwarded
        // headers, a hand-written value): without the module's check they count as a fresh message.
        'in-range-1': 1,
        'in-range-2': 2,
        'at-the-cap': 999,
      };
      for (const [id, value] of Object.entries(hostile)) {
        rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: id, headers: { 'x-attempts': value } });
      }
      const total = Object.keys(hostile).length;
      let dead: GetMessage[] = [];
      dead = await drainUntil(rig.broker, `${queue}.dlq`, total, 6_000).catch(() => dead);
      const summary = Object.fromEntries(Object.keys(hostile).map((id) => [id, calls.get(id)?.length ?? 0]));
      console.log(`[reliability 34] handler calls per hostile x-attempts: ${JSON.stringify(summary)}; dead-lettered ${dead.length}`);
      for (const id of Object.keys(hostile)) {
        const tries = calls.get(id) ?? [];
        expect({ id, attempts: tries.map((t) => t.attempt) }).toEqual({ id, attempts: [1, 2, 3] });
        expect(tries[1].at - tries[0].at).toBeGreaterThanOrEqual(45);
        expect(tries[2].at - tries[1].at).toBeGreaterThanOrEqual(95);
      }
      expect(dead.map((m) => m.properties.messageId).sort()).toEqual(Object.keys(hostile).sort());
      for (const message of dead) {
        expect(header(message, 'x-attempts')).toBe(3);
        // A letter is for reading, not counting: moved back by hand, it gets its full policy (51).
        expect(header(message, 'x-counters-check')).toBeUndefined();
      }
    }, 30_000);

    it.each([
      ['-1e308 does not switch the poison limit off', { '!': 'double', value: -1e308 }],
      // 51: a producer's value inside the range does not cut the limit short.
      ['2, set by a producer, does not cut the poison limit short', 2],
    ])(
      'x-redeliveries of %s',
      async (_label, value) => {
        const serviceName = unique('svc-hostile-redeliveries');
        const queue = rig.broker.queue(unique('hostile-redeliveries'), [1000, 5000]);
        const calls: unknown[] = [];
        const never = deferred();
        @Injectable()
        class Poisoned {
          @MessageHandler({ queue })
          async handle(_payload: unknown, context: MessageContext) {
            calls.push(context.headers['x-redeliveries']);
            await never.promise; // never finishes: the test kills its connection under it
          }
        }
        const maxRedeliveries = 2;
        try {
          await start({ serviceName, maxRedeliveries, shutdownTimeoutMs: 300, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [
            Poisoned,
          ]);
          rig.broker.publishRaw(queue, '{}', {
            contentType: 'application/json',
            messageId: 'poison',
            headers: { 'x-redeliveries': value },
          });
          const dlq = `${queue}.dlq`;
          let kills = 0;
          for (;;) {
            await waitFor(
              async () => calls.length > kills || (await rig.broker.depth(dlq)) > 0,
              'the message again or in the dead-letter queue',
              15_000,
            );
            if ((await rig.broker.depth(dlq)) > 0 || kills > maxRedeliveries + 2) break;
            await closeConnections(serviceName, 'consumer', 'reliability test: the consumer dies');
            kills++;
          }
          console.log(
            `[reliability 34] x-redeliveries ${JSON.stringify(value)}: kills ${kills}, x-redeliveries seen ${JSON.stringify(calls)}`,
          );
          const [dead] = await drainUntil(rig.broker, dlq, 1, 2_000);
          expect(header(dead, 'x-error-name')).toBe('DeliveryLimitError');
          expect(kills).toBe(maxRedeliveries + 1);
        } finally {
          never.resolve();
        }
      },
      60_000,
    );
  });

  describe("39: requeues that are not the message's fault", () => {
    /** A handler of `queue` that always throws, without retries, and how often it ran. */
    function alwaysFailing(queue: string) {
      let calls = 0;
      @Injectable()
      class AlwaysFails {
        @MessageHandler({ queue, retry: false })
        handle() {
          calls++;
          throw new Error("the handler's own failure");
        }
      }
      return { AlwaysFails, calls: () => calls };
    }

    it('a failed outcome publish keeps the message and tries again with a back-off, not in a hot loop, without counting it or running its handler again', async () => {
      const queue = rig.broker.queue(unique('failed-copy'), []);
      const { AlwaysFails, calls } = alwaysFailing(queue);
      const { logger } = await start({ maxRedeliveries: 2, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } }, [AlwaysFails]);
      // An operator replaces the dead-letter queue with one that refuses every publish (nack).
      const dlq = `${queue}.dlq`;
      await rig.broker.channel.deleteQueue(dlq);
      await rig.broker.channel.assertQueue(dlq, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      const returns = () => logger.lines.filter((line) => line.message.includes('could not be recorded')).length;
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'healthy-but-failing' });
      await waitFor(() => returns() >= 3, 'three failed outcomes');
      const before = returns();
      await sleep(1_000); // a window to measure the rate of returns in
      const perSecond = returns() - before;
      // The operator puts it right: without a dead-letter queue the copy comes back unroutable, the queue is declared again.
      await rig.broker.channel.deleteQueue(dlq);
      let dead: GetMessage[] = [];
      dead = await drainUntil(rig.broker, dlq, 1, 8_000).catch(() => dead);
      console.log(
        `[reliability 39] dead-letter copy nacked: tries per second ${perSecond}, handler calls ${calls()}, dead letters ${JSON.stringify(dead.map((m) => m.properties.headers))}`,
      );
      expect(perSecond).toBeLessThan(10);
      // 49: its handler ran once; each return carries out the same outcome again, not the handler.
      expect(calls()).toBe(1);
      expect(dead).toHaveLength(1);
      expect(header(dead[0], 'x-error-name')).toBe('Error');
      expect(header(dead[0], 'x-redeliveries')).toBeUndefined();
    }, 30_000);

    it('a retry copy the broker refuses, with two instances competing: held and sent again, never counted as a redelivery, its handler run once per try', async () => {
      // Seen on a cluster: a quorum retry queue whose leader was lost refused every copy for
      // seconds; the message went back and forth between the instances, each counting it, until
      // it was dead-lettered as DeliveryLimitError though its handler only asked for a retry.
      const queue = rig.broker.queue(unique('refused-retry'), [200]);
      const tries: number[] = [];
      @Injectable()
      class FailsOnce {
        @MessageHandler({ queue, retry: { attempts: 3, delaysMs: [200] } })
        handle(_payload: unknown, context: MessageContext) {
          tries.push(context.attempt);
          if (context.attempt === 1) throw new Error('transient');
        }
      }
      const options = { maxRedeliveries: 2, reconnect: { initialDelayMs: 50, maxDelayMs: 400 } };
      const [a, b] = [await start(options, [FailsOnce]), await start(options, [FailsOnce])];
      // An operator replaces the retry queue with one that refuses every publish (nack).
      const retryQueue = `${queue}.retry.200ms`;
      await rig.broker.channel.deleteQueue(retryQueue);
      await rig.broker.channel.assertQueue(retryQueue, { durable: true, arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' } });
      const logs = () => [...a.logger.lines, ...b.logger.lines].map((line) => line.message);
      const failed = () => logs().filter((line) => line.includes('could not be recorded')).length;
      const counted = () => logs().filter((line) => line.includes('DeliveryLimitError') || line.includes('without an outcome'));
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'refused-retry-1' });
      await waitFor(() => failed() >= 6 || counted().length > 0, 'six refused retry copies');
      // The operator puts it right: without the retry queue the copy comes back unroutable, the topology is declared again.
      await rig.broker.channel.deleteQueue(retryQueue);
      await waitFor(() => tries.includes(2) || counted().length > 0, 'the second try, after the retry delay', 10_000);
      await sleep(500); // a window for a second copy of the message to show up, if there were one
      const dead = await rig.broker.drainQueue(`${queue}.dlq`);
      console.log(
        `[reliability 39] refused retry copy, two instances: tries ${JSON.stringify(tries)}, failed outcomes ${failed()}, dead ${dead.length}`,
      );
      expect(tries).toEqual([1, 2]);
      expect(dead).toEqual([]);
      expect(counted()).toEqual([]);
    }, 30_000);

    it('a message held for its refused outcome when the consumer connection drops: back from the broker, not counted, its outcome carried out without running the handler again', async () => {
      const serviceName = unique('svc-held');
      const queue = rig.broker.queue(unique('held-drop'), []);
      const { AlwaysFails, calls } = alwaysFailing(queue);
      const { logger } = await start({ serviceName, maxRedeliveries: 1, reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [
        AlwaysFails,
      ]);
      // A policy (not queue arguments: the queue is declared again after the reconnect) makes the DLQ refuse every publish.
      const dlq = `${queue}.dlq`;
      const policy = unique('full-dlq');
      const full = JSON.stringify({ 'max-length': 0, overflow: 'reject-publish' });
      await rabbitmqctl('set_policy', policy, `^${dlq.replace(/\./g, '\\.')}$`, full, '--apply-to', 'queues');
      try {
        await waitFor(async () => (await rabbitmqctl('list_queues', 'name', 'policy')).includes(policy), 'the policy applied', 10_000);
        const failed = () => logger.lines.filter((line) => line.message.includes('could not be recorded')).length;
        rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'held-then-dropped' });
        await waitFor(() => failed() >= 2, 'the dead-letter copy refused twice');
        expect(await closeConnections(serviceName, 'consumer', 'reliability test: held')).toBe(1);
        await waitFor(() => lost(logger, 'consumer'), 'the app to see its consumer connection gone');
        // Back after the reconnect, redelivered: still refused, held again; then the operator puts it right.
        const afterDrop = failed();
        await waitFor(() => failed() > afterDrop + 1, 'the message back and its copy refused again', 10_000);
      } finally {
        await rabbitmqctl('clear_policy', policy);
      }
      const dead = await drainUntil(rig.broker, dlq, 1, 8_000);
      await sleep(300); // a window for a second dead letter, if there were one
      const more = await rig.broker.drainQueue(dlq);
      const announced = logger.lines.filter((line) => line.message.includes('moved to')).length;
      console.log(
        `[reliability 39] held outcome, consumer connection dropped: handler calls ${calls()}, dead letters ${dead.length + more.length}, "moved to" logged ${announced} times`,
      );
      expect(calls()).toBe(1);
      expect(dead).toHaveLength(1);
      expect(more).toEqual([]);
      expect(header(dead[0], 'x-error-name')).toBe('Error');
      expect(header(dead[0], 'x-redeliveries')).toBeUndefined();
      // Said when decided, and again when carried out after its return; not on every try.
      expect(announced).toBe(2);
    }, 30_000);

    it('a retry copy still unconfirmed when the consumer connection drops: the original comes back, waits for that copy and is only acked', async () => {
      const proxy = await TcpProxy.start();
      rig.proxies.push(proxy);
      const serviceName = unique('svc-copy-in-flight');
      const queue = rig.broker.queue(unique('copy-in-flight'), [200]);
      const tries: number[] = [];
      const failed = deferred();
      @Injectable()
      class FailsOnce {
        @MessageHandler({ queue, retry: { attempts: 3, delaysMs: [200] } })
        handle(_payload: unknown, context: MessageContext) {
          tries.push(context.attempt);
          if (context.attempt > 1) return;
          failed.resolve();
          throw new Error('transient');
        }
      }
      const { logger } = await start({ serviceName, uri: proxy.url(), reconnect: { initialDelayMs: 50, maxDelayMs: 200 } }, [FailsOnce]);
      // The broker takes the retry copy, but its confirm does not reach the app.
      expect(proxy.holdReceiving(`${serviceName}:publisher`)).toBe(1);
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'copy-in-flight' });
      await failed.promise;
      expect(await closeConnections(serviceName, 'consumer', 'reliability test: copy in flight')).toBe(1);
      await waitFor(() => lost(logger, 'consumer'), 'the app to see its consumer connection gone');
      // The original back on a new channel, redelivered, while its copy is still unconfirmed.
      const connected = () => logger.lines.filter((line) => line.message.startsWith('Connected (consumer)')).length;
      const unacked = async () =>
        (await rabbitmqctl('list_queues', 'name', 'messages_unacknowledged'))
          .split('\n')
          .map((line) => line.trim().split(/\s+/))
          .find(([name]) => name === queue)?.[1];
      await waitFor(async () => connected() >= 2 && (await unacked()) === '1', 'the original delivered again on the new channel', 10_000);
      proxy.resume(); // the copy's confirm arrives
      await waitFor(() => tries.length >= 2, 'the retried try', 10_000);
      await sleep(500); // a window for a try more, if the original were handled again
      const dead = await rig.broker.drainQueue(`${queue}.dlq`);
      console.log(
        `[reliability 39] retry copy in flight when the consumer connection dropped: tries ${JSON.stringify(tries)}, dead ${dead.length}`,
      );
      expect(tries).toEqual([1, 2]);
      expect(dead).toEqual([]);
      expect(await rig.broker.depth(queue)).toBe(0);
    }, 30_000);

    it('a message whose handler finished just as the connection dropped comes back without counting', async () => {
      const serviceName = unique('svc-blip');
      const queue = rig.broker.queue(unique('blip'), [1000, 5000]);
      const calls: Array<{ redelivered: boolean; redeliveries: unknown }> = [];
      const gate = deferred();
      @Injectable()
      class Slow {
        @MessageHandler({ queue })
        async handle(_payload: unknown, context: MessageContext) {
          calls.push({ redelivered: context.redelivered, redeliveries: context.headers['x-redeliveries'] });
          if (calls.length === 1) await gate.promise;
        }
      }
      const { logger } = await start({ serviceName, reconnect: { initialDelayMs: 1_000, maxDelayMs: 1_000 } }, [Slow]);
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'blip-1' });
      await waitFor(() => calls.length === 1, 'the first try');
      expect(await closeConnections(serviceName, 'consumer', 'reliability test: blip')).toBe(1);
      await waitFor(() => lost(logger, 'consumer'), 'the app to see its consumer connection gone');
      gate.resolve(); // finishes now: its ack has no channel to go on
      await waitFor(() => calls.length === 2, 'the message to come back after the reconnect', 10_000);
      console.log(`[reliability 39] handler finished during a blip: ${JSON.stringify(calls)}`);
      expect(calls[1]).toEqual({ redelivered: true, redeliveries: undefined });
    }, 30_000);

    it('a handler given up on by shutdown, restarted more often than maxRedeliveries, is never dead-lettered as DeliveryLimitError', async () => {
      const queue = rig.broker.queue(unique('restarts'), [1000, 5000]);
      const tally = new Tally();
      const tries: Array<{ redeliveries: unknown }> = [];
      @Injectable()
      class Long {
        @MessageHandler({ queue })
        async handle(_payload: unknown, context: MessageContext) {
          tries.push({ redeliveries: context.headers['x-redeliveries'] });
          // A long job that honours the abort signal: only the last instance lets it finish.
          if (tries.length <= 4) {
            await new Promise((_, reject) => context.signal.addEventListener('abort', () => reject(context.signal.reason)));
          }
          tally.see(context.messageId);
        }
      }
      const options = { maxRedeliveries: 2, shutdownTimeoutMs: 100 };
      await rig.broker.channel.assertQueue(queue, { durable: true });
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'long-job', persistent: true });
      for (let restart = 0; restart < 4; restart++) {
        const { app } = await start(options, [Long]);
        await waitFor(() => tries.length === restart + 1, `try ${restart + 1}`, 5_000).catch(() => undefined);
        await app.close();
        if (tries.length < restart + 1) break;
      }
      await start(options, [Long]);
      await waitFor(
        async () => tally.handled.size === 1 || (await rig.broker.depth(`${queue}.dlq`)) > 0,
        'the job to finish or be dead-lettered',
      ).catch(() => undefined);
      console.log(
        `[reliability 39] four shutdowns during a long job: tries ${JSON.stringify(tries)}, handled ${tally.handled.size}, dead-lettered ${await rig.broker.depth(`${queue}.dlq`)}`,
      );
      expect(tally.handled.size).toBe(1);
      expect(await rig.broker.depth(`${queue}.dlq`)).toBe(0);
    }, 60_000);
  });

  describe('44: queue types', () => {
    it('a quorum handler queue gets quorum retry and dead-letter queues, and retries through them', async () => {
      const queue = rig.broker.queue(unique('quorum'), [100]);
      const tally = new Tally();
      @Injectable()
      class Quorum {
        @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [100] }, queueOptions: { arguments: { 'x-queue-type': 'quorum' } } })
        handle(_payload: unknown, context: MessageContext) {
          if (context.attempt === 1) throw new Error('transient');
          tally.see(context.messageId);
        }
      }
      const { client } = await start({}, [Quorum]);
      const types = Object.fromEntries((await queuesLike(queue)).map((q) => [q.name, q.type]));
      console.log(`[reliability 44] queue types: ${JSON.stringify(types)}`);
      expect(types).toEqual({ [queue]: 'quorum', [`${queue}.dlq`]: 'quorum', [`${queue}.retry.100ms`]: 'quorum' });
      const id = await client.send(queue, { n: 1 });
      await waitFor(() => tally.handled.has(id), 'the retried message through the quorum retry queue');
    });
  });
});
