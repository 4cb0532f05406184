import { Injectable } from '@nestjs/common';
import type { Message as GetMessage } from '../../lib/transport/transport.interface';
import {
  DeadLetters,
  type IdempotencyStore,
  InvalidArgumentError,
  MemoryIdempotencyStore,
  MessageHandler,
  MessagingAdmin,
  SettlementError,
  type MessageContext,
  type MessagingOptions,
} from '../../lib';
import { appModule } from '../support/app';
import { deferred, rabbitmqctl, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, drainUntil, faultRig, sleep, startAppLogged } from './helpers';

/**
 * RELIABILITY.md round 3, the outcome rules' share: 45 (replay and RabbitMQ's dead-letter cycle
 * check), 49 (context.retry() on the handler's own retry path, also with declare: false), 50 (every
 * retry path ends), 52 (late settlement refused), 53 (retry delays validated), 57 (replay goes only
 * where the module put a letter), 62 (an abandoned delivery leaves one copy) and 65 (queueDepth and
 * the rename map). 51 (counters a producer wrote) extends case 34 in copies-and-counters.spec.ts.
 */
describe('reliability: outcome holes (round 3)', () => {
  const rig = faultRig();

  async function start(options: Partial<MessagingOptions>, providers: unknown[]) {
    const logger = new CaptureLogger();
    const app = await startAppLogged(
      appModule({ serviceName: unique('svc-outcomes'), ...options }, { providers: providers as never[] }),
      logger,
    );
    rig.apps.push(app);
    return { app, logger };
  }

  async function namesLike(what: 'queues' | 'exchanges', fragment: string): Promise<string[]> {
    return (await rabbitmqctl(`list_${what}`, 'name'))
      .split('\n')
      .map((line) => line.trim())
      .filter((name) => name.includes(fragment));
  }

  const header = (message: GetMessage, name: string): unknown => message.properties.headers?.[name];

  /**
   * Case 62's rig: an app behind its own proxy whose handler fails on `queue` (retried after a
   * minute), the confirms of its publisher held, one message sent; shutdown gives up on it while
   * its retry copy is unconfirmed, then the confirms flow again. Resolves once close() did.
   */
  async function abandonWithCopyInFlight(label: string, options: Partial<MessagingOptions> = {}) {
    const proxy = await TcpProxy.start();
    rig.proxies.push(proxy);
    const serviceName = unique(`svc-${label}`);
    const queue = rig.broker.queue(unique(label), [60_000]);
    const failed = deferred();
    @Injectable()
    class FailsOnce {
      @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [60_000] } })
      handle() {
        failed.resolve();
        throw new Error('fails');
      }
    }
    const { app, logger } = await start({ serviceName, uri: proxy.url(), shutdownTimeoutMs: 300, ...options }, [FailsOnce]);
    return {
      queue,
      logger,
      run: async () => {
        expect(proxy.holdReceiving(`${serviceName}:publisher`)).toBe(1);
        rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: label });
        await failed.promise;
        const closing = app.close();
        await waitFor(() => logger.lines.some((line) => line.message.includes('Shutdown timeout')), 'shutdown gave up on it', 5_000);
        proxy.resume();
        await closing;
      },
    };
  }

  it('45: a letter RabbitMQ itself dead-lettered, replayed or moved back by hand, gets its retries and ends in the DLQ again (not dropped by the cycle check)', async () => {
    const queue = rig.broker.queue(unique('broker-dead'), [50]);
    const dlq = `${queue}.dlq`;
    const policy = unique('dlx-policy');
    // The queue and its DLQ as the module declares them; a policy makes RabbitMQ dead-letter
    // expired messages of the queue into the DLQ, with its own x-death (reason: expired).
    await rig.broker.channel.assertQueue(queue, { durable: true });
    await rig.broker.channel.assertQueue(dlq, { durable: true });
    await rabbitmqctl(
      'set_policy',
      policy,
      `^${queue}$`,
      JSON.stringify({ 'dead-letter-exchange': '', 'dead-letter-routing-key': dlq }),
      '--apply-to',
      'queues',
    );
    try {
      await waitFor(async () => (await rabbitmqctl('list_queues', 'name', 'policy')).includes(policy), 'the policy applied', 10_000);
      for (const id of ['replayed', 'moved'])
        rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: id, expiration: '1' });
      await waitFor(async () => (await rig.broker.depth(dlq)) === 2, 'RabbitMQ dead-lettered both', 10_000);
    } finally {
      await rabbitmqctl('clear_policy', policy);
    }
    // One is moved back by hand, all headers kept (as a shovel or the management UI does).
    const [first, second] = await rig.broker.drainQueue(dlq);
    expect(header(first, 'x-death')).toBeDefined();
    for (const letter of [first, second]) {
      rig.broker.channel.publish('', letter.properties.messageId === 'moved' ? queue : dlq, letter.content, letter.properties as never);
    }
    const tries = new Map<string, number[]>();
    @Injectable()
    class AlwaysFails {
      @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [50] } })
      handle(_payload: unknown, context: MessageContext) {
        tries.set(context.messageId!, [...(tries.get(context.messageId!) ?? []), context.attempt]);
        throw new Error('still failing');
      }
    }
    const { app } = await start({}, [AlwaysFails]);
    expect(await app.get(DeadLetters).replay(queue)).toBe(1);
    const dead = await drainUntil(rig.broker, dlq, 2, 8_000).catch(() => []);
    console.log(`[reliability 45] tries ${JSON.stringify(Object.fromEntries(tries))}, back in the DLQ ${dead.length}`);
    expect(Object.fromEntries(tries)).toEqual({ replayed: [1, 2], moved: [1, 2] });
    expect(dead.map((m) => m.properties.messageId).sort()).toEqual(['moved', 'replayed']);
  }, 30_000);

  describe("49: context.retry() takes the handler's own retry path", () => {
    it('without delayMs through <queue>.retry.<ms>ms, with a delay the policy has no queue for through an expiring ad-hoc queue; no messaging.delay.* object', async () => {
      const queue = rig.broker.queue(unique('own-retry'), [60]);
      rig.broker.sweep(`${queue}.retry.`);
      const seen: Array<{ id: string; attempt: number; at: number }> = [];
      @Injectable()
      class Retries {
        @MessageHandler({ queue, retry: { attempts: 2, delaysMs: [60] } })
        handle(payload: { delayMs?: number }, context: MessageContext) {
          seen.push({ id: context.messageId!, attempt: context.attempt, at: Date.now() });
          if (context.attempt === 1) return context.retry(payload.delayMs === undefined ? {} : { delayMs: payload.delayMs });
        }
      }
      const delaysBefore = await namesLike('exchanges', 'messaging.delay');
      await start({}, [Retries]);
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'policy' });
      rig.broker.publishRaw(queue, JSON.stringify({ delayMs: 130 }), { contentType: 'application/json', messageId: 'adhoc' });
      await waitFor(() => seen.filter((s) => s.attempt === 2).length === 2, 'both tried again', 10_000);
      const gap = (id: string) =>
        seen
          .filter((s) => s.id === id)
          .map((s) => s.at)
          .reduce((a, b) => b - a);
      expect(gap('policy')).toBeGreaterThanOrEqual(55);
      expect(gap('adhoc')).toBeGreaterThanOrEqual(125);
      expect(await namesLike('exchanges', 'messaging.delay')).toEqual(delaysBefore);
      const adhoc = (await rabbitmqctl('list_queues', 'name', 'arguments'))
        .split('\n')
        .find((line) => line.includes(`${queue}.retry.130ms.adhoc`));
      expect(adhoc).toContain('x-expires');
    });

    it('with declare: false and exactly the topology docs/topology.md lists, context.retry() works; a delay without a queue is refused', async () => {
      const queue = rig.broker.queue(unique('own-retry-nodeclare'), [70]);
      await rig.broker.channel.assertQueue(queue, { durable: true });
      await rig.broker.channel.assertQueue(`${queue}.dlq`, { durable: true });
      await rig.broker.channel.assertQueue(`${queue}.retry.70ms`, {
        durable: true,
        arguments: { 'x-message-ttl': 70, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': queue },
      });
      const attempts: number[] = [];
      const refused: unknown[] = [];
      @Injectable()
      class Retries {
        @MessageHandler({ queue, declare: false, retry: { attempts: 2, delaysMs: [70] } })
        async handle(_payload: unknown, context: MessageContext) {
          attempts.push(context.attempt);
          if (context.attempt > 1) return;
          try {
            await context.retry({ delayMs: 5_000 });
          } catch (error) {
            refused.push(error);
            await context.retry();
          }
        }
      }
      await start({}, [Retries]);
      rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'm' });
      await waitFor(() => attempts.length === 2, 'tried again', 10_000);
      expect(attempts).toEqual([1, 2]);
      expect(refused).toHaveLength(1);
      expect(refused[0]).toBeInstanceOf(InvalidArgumentError);
      expect((refused[0] as Error).message).toContain('declare: false');
      expect(await namesLike('queues', `${queue}.retry.5000ms`)).toEqual([]);
    });
  });

  it('50: a handler that always calls context.retry() is dead-lettered on try 1000, never starts again at try 1', async () => {
    const queue = rig.broker.queue(unique('retry-forever'), []);
    const attempts: number[] = [];
    @Injectable()
    class Forever {
      @MessageHandler({ queue, prefetch: 1, retry: false })
      handle(_payload: unknown, context: MessageContext) {
        attempts.push(context.attempt);
        return context.retry({ delayMs: 0 });
      }
    }
    await start({}, [Forever]);
    rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'forever' });
    await waitFor(
      async () => attempts.length > 1005 || (await rig.broker.depth(`${queue}.dlq`)) > 0,
      'the dead-letter queue, or try 1006',
      60_000,
    );
    const [dead] = await drainUntil(rig.broker, `${queue}.dlq`, 1, 2_000).catch(() => []);
    console.log(
      `[reliability 50] tries ${attempts.length}, last ${attempts.at(-1)}, dead-lettered ${dead ? header(dead, 'x-error-name') : 'no'}`,
    );
    expect(attempts.length).toBe(1000);
    expect(attempts.at(-1)).toBe(1000);
    expect(header(dead, 'x-error-name')).toBe('DeliveryLimitError');
    expect(header(dead, 'x-attempts')).toBe(1000);
  }, 90_000);

  it('52: settling after the handler returned throws SettlementError, writes nothing, and no other message runs twice', async () => {
    const queue = rig.broker.queue(unique('late-settle'), []);
    const calls = new Map<string, number>();
    const late: unknown[] = [];
    const slowStarted = deferred();
    const lateDone = deferred();
    @Injectable()
    class Late {
      @MessageHandler({ queue, prefetch: 5, retry: false })
      async handle(payload: { slow?: boolean }, context: MessageContext) {
        calls.set(context.messageId!, (calls.get(context.messageId!) ?? 0) + 1);
        if (payload.slow) {
          slowStarted.resolve();
          await lateDone.promise;
          await sleep(300);
          return;
        }
        await slowStarted.promise;
        setTimeout(() => {
          for (const settle of [() => context.nack(), () => context.ack(), () => context.retry(), () => context.deadLetter('late')]) {
            try {
              void settle();
            } catch (error) {
              late.push(error);
            }
          }
          lateDone.resolve();
        }, 50);
      }
    }
    const { logger } = await start({}, [Late]);
    rig.broker.publishRaw(queue, JSON.stringify({ slow: true }), { contentType: 'application/json', messageId: 'slow' });
    rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'quick' });
    await lateDone.promise;
    await waitFor(async () => (await rig.broker.depth(queue)) === 0, 'the queue empty', 5_000);
    await sleep(800);
    console.log(
      `[reliability 52] late calls threw ${late.map((e) => (e as Error).name).join(', ')}; calls ${JSON.stringify(Object.fromEntries(calls))}`,
    );
    expect(late).toHaveLength(4);
    for (const error of late) expect(error).toBeInstanceOf(SettlementError);
    expect(Object.fromEntries(calls)).toEqual({ slow: 1, quick: 1 });
    expect(logger.lines.filter((line) => line.message.includes('closed by RabbitMQ'))).toEqual([]);
    expect(await rig.broker.depth(`${queue}.dlq`)).toBe(0);
  });

  it('52: an idempotent handler settling after it returned, while its success is being recorded, is refused too', async () => {
    const queue = rig.broker.queue(unique('late-settle-idem'), []);
    const late = deferred<unknown>();
    const calls: string[] = [];
    // A store whose record of success takes a while: the window a late call used to slip through.
    const memory = new MemoryIdempotencyStore();
    const slowStore: IdempotencyStore = {
      claim: (key, token, leaseMs) => memory.claim(key, token, leaseMs),
      release: (key, token) => memory.release(key, token),
      complete: async (key, ttlMs, reply) => {
        await sleep(300);
        return memory.complete(key, ttlMs, reply);
      },
    };
    @Injectable()
    class LateIdempotent {
      @MessageHandler({ queue, idempotent: true, retry: false })
      handle(_payload: unknown, context: MessageContext) {
        calls.push(`try ${context.attempt}`);
        if (context.attempt > 1) return;
        setTimeout(() => {
          try {
            void context.retry({ delayMs: 0 });
            late.resolve('accepted');
          } catch (error) {
            late.resolve(error);
          }
        }, 50);
      }
    }
    await start({ idempotency: { store: slowStore } }, [LateIdempotent]);
    rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'late-idem' });
    const outcome = await late.promise;
    await waitFor(async () => (await rig.broker.depth(queue)) === 0, 'the queue empty', 5_000);
    await sleep(500);
    expect(outcome).toBeInstanceOf(SettlementError);
    expect(calls).toEqual(['try 1']);
  });

  it('62: an outcome copy refused after shutdown gave up puts the message back at once, unchanged (not after a back-off the shutdown does not wait for)', async () => {
    const { queue, logger, run } = await abandonWithCopyInFlight('abandon-refused', {
      reconnect: { initialDelayMs: 5_000, maxDelayMs: 5_000 },
    });
    const policy = unique('full-retry');
    // The retry queue refuses every copy (nack), as a full one with reject-publish does.
    await rabbitmqctl(
      'set_policy',
      policy,
      `^${queue}\\.retry\\.`,
      JSON.stringify({ 'max-length': 0, overflow: 'reject-publish' }),
      '--apply-to',
      'queues',
    );
    try {
      await waitFor(async () => (await rabbitmqctl('list_queues', 'name', 'policy')).includes(policy), 'the policy applied', 10_000);
      await run();
      const [back] = await drainUntil(rig.broker, queue, 1, 5_000);
      console.log(`[reliability 62] refused copy at shutdown: back in the queue redelivered=${back.fields.redelivered}`);
      expect(back.fields.redelivered).toBe(false);
      expect(logger.lines.filter((line) => line.message.includes('not confirmed before shutdown'))).toEqual([]);
      // Its handler had ended: what shutdown gave up on was its outcome, and the log says so.
      const gaveUp = logger.lines.filter((line) => line.message.includes('Shutdown timeout')).map((line) => line.message);
      expect(gaveUp).toHaveLength(1);
      expect(gaveUp[0]).toContain('still waits for RabbitMQ to take its outcome');
      expect(gaveUp[0]).not.toContain('still runs');
    } finally {
      await rabbitmqctl('clear_policy', policy);
    }
  });

  it('53: retry({ delayMs }) that is not a whole number of milliseconds is refused with InvalidArgumentError; nothing is declared for it', async () => {
    const queue = rig.broker.queue(unique('bad-delay'), []);
    const bad = [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY, 2 ** 31, '100' as unknown as number];
    const errors: unknown[] = [];
    @Injectable()
    class BadDelays {
      @MessageHandler({ queue, retry: false })
      handle(_payload: unknown, context: MessageContext) {
        for (const delayMs of bad) {
          try {
            void context.retry({ delayMs });
          } catch (error) {
            errors.push(error);
          }
        }
      }
    }
    const before = await namesLike('queues', `${queue}.retry.`);
    const delaysBefore = await namesLike('exchanges', 'messaging.delay');
    await start({}, [BadDelays]);
    rig.broker.publishRaw(queue, '{}', { contentType: 'application/json', messageId: 'm' });
    await waitFor(() => errors.length === bad.length, 'every bad delay refused', 5_000).catch(() => undefined);
    await waitFor(async () => (await rig.broker.depth(queue)) === 0, 'the message acked', 5_000);
    expect(errors.map((e) => (e as Error).name)).toEqual(bad.map(() => 'InvalidArgumentError'));
    expect(await namesLike('queues', `${queue}.retry.`)).toEqual(before);
    expect((await namesLike('exchanges', 'messaging.delay')).filter((name) => !delaysBefore.includes(name))).toEqual([]);
  });

  it('57: replay sends a letter back to the queue of its DLQ, never to a queue a producer named in x-original-queue', async () => {
    const queue = rig.broker.queue(unique('replay-target'), []);
    const victim = rig.broker.queue(unique('replay-victim'), []);
    await rig.broker.channel.assertQueue(victim, { durable: true });
    const seen: string[] = [];
    @Injectable()
    class Target {
      @MessageHandler({ queue, retry: false })
      handle(_payload: unknown, context: MessageContext) {
        seen.push(context.messageId!);
      }
    }
    const { app } = await start({}, [Target]);
    rig.broker.publishRaw(`${queue}.dlq`, '{}', {
      contentType: 'application/json',
      messageId: 'forged',
      headers: { 'x-original-queue': victim },
    });
    await waitFor(async () => (await rig.broker.depth(`${queue}.dlq`)) === 1, 'the letter in the DLQ', 5_000);
    expect(await app.get(DeadLetters).replay(queue)).toBe(1);
    await waitFor(() => seen.length === 1, 'the letter handled', 5_000).catch(() => undefined);
    expect(await rig.broker.depth(victim)).toBe(0);
    expect(seen).toEqual(['forged']);
  });

  it('62: a retry copy in flight when shutdown gives up is confirmed and the original acked: one copy, not two', async () => {
    const { queue, run } = await abandonWithCopyInFlight('abandon-copy');
    await run();
    const retryDepth = await rig.broker.depth(`${queue}.retry.60000ms`);
    const queueDepth = await rig.broker.depth(queue);
    console.log(`[reliability 62] after close: retry queue ${retryDepth}, queue ${queueDepth}`);
    expect({ retryDepth, queueDepth }).toEqual({ retryDepth: 1, queueDepth: 0 });
  });

  it('65: MessagingAdmin.queueDepth() takes the name handlers use and applies the rename map', async () => {
    const onBroker = rig.broker.queue(unique('renamed-depth'), []);
    @Injectable()
    class Renamed {
      @MessageHandler({ queue: 'orders', retry: false })
      handle() {}
    }
    const { app } = await start({ queues: { orders: onBroker }, registerHandlers: false }, [Renamed]);
    await rig.broker.channel.assertQueue(onBroker, { durable: true });
    rig.broker.publishRaw(onBroker, '{}', { contentType: 'application/json' });
    await waitFor(async () => (await rig.broker.depth(onBroker)) === 1, 'one ready', 5_000);
    expect(await app.get(MessagingAdmin).queueDepth('orders')).toEqual({ messages: 1, consumers: 0 });
  });
});
