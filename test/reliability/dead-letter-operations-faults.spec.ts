import type { AddressInfo } from 'node:net';
import {
  type CanActivate,
  type ExecutionContext,
  Injectable,
  type INestApplication,
  type INestApplicationContext,
  Module,
  type Type,
} from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  ConnectionLostError,
  type DeadLetterPage,
  DeadLetters,
  InvalidArgumentError,
  MessageHandler,
  MessagingHealth,
  MessagingModule,
  type MessagingOptions,
  UnrecoverableError,
} from '../../lib';
import { MessagingConsoleModule } from '../../lib/console';
import { ConnectionManager } from '../../lib/connection/connection-manager';
import type { Message } from '../../lib/transport/transport.interface';
import { appModule } from '../support/app';
import { unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, faultRig, outcome, startAppLogged, within } from './helpers';

/**
 * The failure paths of DeadLetters.browse / replay({ ids }) / discard and of the operator console,
 * on RabbitMQ: a connection cut while an operation holds letters unacked (1), a replay whose target
 * queue an operator deleted (2), ids that are gone or repeated (3), operations started together
 * (4), a shutdown in the middle of a read (5), the console with its broker out of reach (6), and a
 * cut at the two moments the outcome of an operation hangs on: as its ack is written (7) and as its
 * channel closes (8). The faults are injected at a precise frame by `probe` (a watch on the app's
 * transport) through a TcpProxy. Every check counts the letters at the end with a reader of its own
 * (the test's connection, not the module): nothing lost, nothing doubled, the order kept.
 */
describe('reliability: dead-letter operations and the console under faults', () => {
  const rig = faultRig();
  const { proxies } = rig;
  /** Apps of one test, closed after it (those a test closed itself are skipped). */
  const apps: Array<{ app: INestApplicationContext; closed: boolean }> = [];

  afterEach(async () => {
    for (const proxy of proxies) proxy.resume();
    for (const entry of apps.splice(0)) if (!entry.closed) await entry.app.close().catch(() => undefined);
  });

  type QueueType = 'classic' | 'quorum';

  /** A handler of `queue` that dead-letters every message but those whose `n` is in `passing`. */
  function failingHandler(queue: string, queueType: QueueType, passing = new Set<number>(), handled: number[] = []): Type<unknown> {
    @Injectable()
    class Failing {
      @MessageHandler({ queue, queueType, retry: false })
      handle({ n }: { n: number }) {
        if (!passing.has(n)) throw new UnrecoverableError(`letter ${n}`);
        handled.push(n);
      }
    }
    return Failing;
  }

  async function start(options: Partial<MessagingOptions>, providers: Type<unknown>[] = [], logger = new CaptureLogger()) {
    const app = await startAppLogged(appModule({ serviceName: unique('svc-dl'), ...options }, { providers }), logger);
    const entry = { app, closed: false };
    apps.push(entry);
    return { app, entry, logger, deadLetters: app.get(DeadLetters) };
  }

  /** An app behind a proxy of its own (quick heartbeats and reconnects) with a failing handler of a fresh queue. */
  async function startBehindProxy(label: string, queueType: QueueType) {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const queue = rig.broker.queue(unique(`${label}-${queueType}`), []);
    const { app, deadLetters } = await start(
      { uri: proxy.url(), heartbeatSeconds: 2, reconnect: { initialDelayMs: 50, maxDelayMs: 250 } },
      [failingHandler(queue, queueType)],
    );
    return { proxy, queue, dlq: `${queue}.dlq`, app, deadLetters };
  }

  /**
   * Puts `count` letters into `dlq` from the test's own connection, in order: message ids
   * `<tag>-<n>`, bodies `{ n }`. Returns their message ids.
   */
  async function fill(dlq: string, count: number, tag: string): Promise<string[]> {
    const ids = Array.from({ length: count }, (_, n) => `${tag}-${n}`);
    for (const [n, messageId] of ids.entries()) {
      rig.broker.publishRaw(dlq, JSON.stringify({ n }), {
        contentType: 'application/json',
        messageId,
        persistent: true,
        headers: { 'x-error-name': 'UnrecoverableError', 'x-error-message': `letter ${n}` },
      });
    }
    await waitFor(async () => (await rig.broker.depth(dlq)) === count, `${count} letters in ${dlq}`);
    return ids;
  }

  /**
   * What `dlq` holds, read by the test's own connection and taken off it (the end of a test): its
   * message ids in queue order, once at least `expected` letters are ready (none held any more).
   */
  async function takeAll(dlq: string, expected: number): Promise<string[]> {
    await waitFor(async () => (await rig.broker.depth(dlq)) >= expected, `${expected} letters ready in ${dlq}`, 15_000);
    const letters = await rig.broker.drainQueue(dlq);
    return letters.map((msg) => msg.properties.messageId as string);
  }

  const messageIds = (page: DeadLetterPage) => page.letters.map((letter) => letter.messageId);
  const idOf = (page: DeadLetterPage, messageId: string) => page.letters.find((letter) => letter.messageId === messageId)!.id;

  /**
   * Watches the transport under an app's dead-letter operations on `dlq`, on the channel of each
   * operation's scan (`scan` counts them from 1): `onDelivery(k, scan)` runs as the k-th letter of
   * a scan reaches the app, before the scan sees it, and the scan sees it only if `onDelivery` does
   * not return false (a letter it does not see is one still on the wire); `onAck` runs as the scan
   * acks a letter and `onClose` as the operation closes the channel, each before the frame is
   * written. For injecting faults at those moments; changes nothing else.
   */
  function probe(
    app: INestApplicationContext,
    dlq: string,
    hooks: { onDelivery?: (k: number, scan: number) => boolean | void; onAck?: () => void; onClose?: () => void },
  ): void {
    const publisher = app.get(ConnectionManager).publisher;
    const createChannel = publisher.createChannel.bind(publisher);
    let scans = 0;
    publisher.createChannel = async (options) => {
      const channel = await createChannel(options);
      const consume = channel.consume.bind(channel);
      channel.consume = async (queue, onMessage, consumeOptions) => {
        if (queue !== dlq) return consume(queue, onMessage, consumeOptions);
        const scan = ++scans;
        let delivered = 0;
        const { ack, close } = { ack: channel.ack.bind(channel), close: channel.close.bind(channel) };
        channel.ack = (msg, allUpTo) => {
          hooks.onAck?.();
          ack(msg, allUpTo);
        };
        channel.close = () => {
          hooks.onClose?.();
          return close();
        };
        return consume(
          queue,
          (msg: Message | null) => {
            if (!msg || hooks.onDelivery?.(++delivered, scan) !== false) onMessage(msg);
          },
          consumeOptions,
        );
      };
      return channel;
    };
  }

  it.each<QueueType>(['classic', 'quorum'])(
    '1: the connection cut while a browse holds 50 letters of a %s .dlq: the browse settles in time, nothing is lost, the order is kept',
    async (queueType) => {
      const { proxy, queue, dlq, app, deadLetters } = await startBehindProxy('dl-cut', queueType);
      const sent = await fill(dlq, 50, 'cut');
      let cutAt = 0;
      // The connection goes as the 25th letter arrives; those after it were still on the wire.
      probe(app, dlq, {
        onDelivery: (k, scan) => {
          if (scan > 1) return true;
          if (k === 25) {
            proxy.cut();
            cutAt = Date.now();
          }
          return k <= 25;
        },
      });

      const started = Date.now();
      const browsed = await within(outcome(deadLetters.browse(queue, { limit: 50 })), 15_000, 'still pending' as const);
      expect(cutAt, 'the cut came while the browse held letters').toBeGreaterThan(0);
      expect(browsed, 'the browse settles within 15 s of the cut').not.toBe('still pending');
      const result = browsed as Exclude<typeof browsed, 'still pending'>;
      const settledAfterMs = result.at - cutAt;
      console.log(
        `[dead letters 1, ${queueType}] browse ${result.ok ? `resolved ${result.value.letters.length} of ${result.value.total}` : `rejected: ${String(result.error)}`} ` +
          `${settledAfterMs} ms after the cut (${cutAt - started} ms after it started)`,
      );
      // Not a page of the 25 letters that came, as if the queue held no more: an error, as the loss
      // happens (not after the scan's idle timeout of 5 s).
      expect(result.ok ? `resolved ${result.value.letters.length} of ${result.value.total}` : result.error).toBeInstanceOf(
        ConnectionLostError,
      );
      expect(settledAfterMs).toBeLessThan(3_000);

      // While the app is cut off, the broker has every letter back.
      await waitFor(async () => (await rig.broker.depth(dlq)) === 50, 'the 50 letters back in the .dlq', 10_000);
      proxy.resume();
      const health = app.get(MessagingHealth);
      await waitFor(() => health.isConnected(), 'the app connected again', 15_000);
      const again = await deadLetters.browse(queue, { limit: 50 });
      expect(again.total).toBe(50);
      expect(messageIds(again)).toEqual(sent);
      expect(again.letters.map((letter) => letter.position)).toEqual(sent.map((_, n) => n));
      expect(await takeAll(dlq, 50)).toEqual(sent);
    },
    60_000,
  );

  it.each<QueueType>(['classic', 'quorum'])(
    '2: replay of a %s .dlq whose queue an operator deleted: resolves 0 with a warning, every letter stays in place',
    async (queueType) => {
      const queue = rig.broker.queue(unique(`dl-gone-${queueType}`), []);
      const dlq = `${queue}.dlq`;
      const args = queueType === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
      await rig.broker.channel.assertQueue(queue, {
        durable: true,
        arguments: { ...args, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': dlq },
      });
      await rig.broker.channel.assertQueue(dlq, { durable: true, arguments: args });
      // An app that no longer has the queue's handler: what is left is the dead letters.
      const { deadLetters, logger } = await start({});
      const sent = await fill(dlq, 6, 'gone');
      const page = await deadLetters.browse(queue);
      expect(messageIds(page)).toEqual(sent);
      await rig.broker.channel.deleteQueue(queue);
      expect(await rig.broker.exists(queue)).toBe(false);

      // Documented (DeadLetters.replay): a message whose queue no longer exists stays where it is,
      // and a warning counts them; it returns how many moved.
      await expect(deadLetters.replay(queue, { ids: [idOf(page, 'gone-2'), idOf(page, 'gone-4')] })).resolves.toBe(0);
      expect(
        logger.matching(new RegExp(`Replay of "${queue}": 2 messages left in "${dlq}": their queue "${queue}" does not exist`)),
      ).toHaveLength(1);
      await expect(deadLetters.replay(queue)).resolves.toBe(0);
      expect(logger.matching(new RegExp(`Replay of "${queue}": 6 messages left in "${dlq}"`))).toHaveLength(1);
      await expect(deadLetters.replay(queue, { limit: 2 })).resolves.toBe(0);

      const after = await deadLetters.browse(queue);
      expect(after.total).toBe(6);
      expect(messageIds(after)).toEqual(sent);
      // The ids still name the same letters: nothing was re-published or renewed.
      expect(after.letters.map((letter) => letter.id)).toEqual(page.letters.map((letter) => letter.id));
      expect(await rig.broker.exists(queue), 'the replay declared nothing').toBe(false);
      expect(await takeAll(dlq, 6)).toEqual(sent);
    },
    60_000,
  );

  it.each<QueueType>(['classic', 'quorum'])(
    '3: discard and replay({ ids }) of a %s .dlq with ids gone (another instance took them) or repeated: counts only what they did, the rest untouched and in order',
    async (queueType) => {
      const queue = rig.broker.queue(unique(`dl-stale-${queueType}`), []);
      const dlq = `${queue}.dlq`;
      const passing = new Set<number>();
      const handled: number[] = [];
      const { deadLetters, logger } = await start({}, [failingHandler(queue, queueType, passing, handled)]);
      // Another instance of the app, sharing the queue.
      const other = await start({}, [failingHandler(queue, queueType)]);
      const sent = await fill(dlq, 10, 'stale');
      // Two letters that are one: the same message id and body.
      for (let twin = 0; twin < 2; twin++) {
        rig.broker.publishRaw(dlq, JSON.stringify({ n: 99 }), {
          contentType: 'application/json',
          messageId: 'stale-twin',
          persistent: true,
        });
      }
      await waitFor(async () => (await rig.broker.depth(dlq)) === 12, '12 letters');
      const page = await deadLetters.browse(queue);
      expect(messageIds(page)).toEqual([...sent, 'stale-twin', 'stale-twin']);
      const id = (n: number) => idOf(page, `stale-${n}`);

      // The other instance takes letters 2 and 3 first: this one's page is stale.
      await expect(other.deadLetters.discard(queue, [id(2), id(3)])).resolves.toBe(2);

      await expect(deadLetters.discard(queue, [id(2)]), 'an id that is gone').resolves.toBe(0);
      await expect(deadLetters.discard(queue, [id(4), id(4)]), 'an id repeated').resolves.toBe(1);
      passing.add(5);
      await expect(deadLetters.replay(queue, { ids: [id(3), id(5), id(5)] }), 'one gone, one repeated').resolves.toBe(1);
      await waitFor(() => handled.length === 1, 'the replayed letter handled');
      await expect(deadLetters.replay(queue, { ids: [id(4)] }), 'discarded already').resolves.toBe(0);
      await expect(deadLetters.discard(queue, [id(5)]), 'replayed already').resolves.toBe(0);
      const twin = idOf(page, 'stale-twin');
      await expect(deadLetters.discard(queue, [twin, twin]), 'one id names either twin, once').resolves.toBe(1);
      // Documented refusals (checkIds): nothing read, nothing changed.
      await expect(deadLetters.discard(queue, [])).rejects.toBeInstanceOf(InvalidArgumentError);
      await expect(deadLetters.replay(queue, { ids: ['not-a-letter-id'] })).rejects.toBeInstanceOf(InvalidArgumentError);

      expect(handled).toEqual([5]);
      expect(logger.matching(/Replay of|dead letter|dlq/i).filter((line) => !/^Discarded 1 dead letters/.test(line))).toEqual([]);
      expect(logger.lines.filter((line) => line.level === 'error')).toEqual([]);
      const left = ['stale-0', 'stale-1', 'stale-6', 'stale-7', 'stale-8', 'stale-9', 'stale-twin'];
      const after = await deadLetters.browse(queue);
      expect(after.total).toBe(left.length);
      expect(messageIds(after)).toEqual(left);
      expect(await takeAll(dlq, left.length)).toEqual(left);
    },
    60_000,
  );

  it.each<QueueType>(['classic', 'quorum'])(
    '4: browse, replay({ ids }), discard and a second browse started together on one %s .dlq: each as if alone, in the order asked',
    async (queueType) => {
      const queue = rig.broker.queue(unique(`dl-together-${queueType}`), []);
      const dlq = `${queue}.dlq`;
      const passing = new Set<number>([10]);
      const handled: number[] = [];
      const { deadLetters } = await start({}, [failingHandler(queue, queueType, passing, handled)]);
      const sent = await fill(dlq, 50, 'together');
      const ids = await deadLetters.browse(queue, { limit: 50 });
      const id = (n: number) => idOf(ids, `together-${n}`);

      const [first, replayed, discarded, second] = await Promise.all([
        deadLetters.browse(queue, { limit: 50 }),
        deadLetters.replay(queue, { ids: [id(10)] }),
        deadLetters.discard(queue, [id(20), id(30)]),
        deadLetters.browse(queue, { offset: 10, limit: 20 }),
      ]);
      const left = sent.filter((_, n) => ![10, 20, 30].includes(n));
      expect(first.total).toBe(50);
      expect(messageIds(first)).toEqual(sent);
      expect(replayed).toBe(1);
      expect(discarded).toBe(2);
      expect(second.total).toBe(47);
      expect(second.offset).toBe(10);
      expect(messageIds(second)).toEqual(left.slice(10, 30));
      expect(second.letters.map((letter) => letter.position)).toEqual(left.slice(10, 30).map((_, i) => 10 + i));
      await waitFor(() => handled.length === 1, 'the replayed letter handled');
      expect(handled).toEqual([10]);
      expect(await takeAll(dlq, 47)).toEqual(left);
    },
    60_000,
  );

  it.each<QueueType>(['classic', 'quorum'])(
    '5: app.close() while a browse of a %s .dlq is reading: the close ends in its bound, the browse settles, no letter is lost',
    async (queueType) => {
      const queue = rig.broker.queue(unique(`dl-close-${queueType}`), []);
      const dlq = `${queue}.dlq`;
      const shutdownTimeoutMs = 2_000;
      const { app, entry, deadLetters } = await start({ shutdownTimeoutMs }, [failingHandler(queue, queueType)]);
      const sent = await fill(dlq, 50, 'close');
      let closing: Promise<Awaited<ReturnType<typeof outcome<void>>>> | undefined;
      let closeStarted = 0;
      // The 20th letter is where the app is told to close; those after it are still on the wire.
      probe(app, dlq, {
        onDelivery: (k) => {
          if (k === 20) {
            closeStarted = Date.now();
            entry.closed = true;
            closing = outcome(app.close());
          }
          return k < 20;
        },
      });
      const browsing = outcome(deadLetters.browse(queue, { limit: 50 }));
      await waitFor(() => closing !== undefined, 'the close started during the browse');
      // Its documented bound on a stalled socket: shutdownTimeoutMs + 2 s + 2 s + 3 s.
      const closed = await within(closing!, shutdownTimeoutMs + 7_000, 'still closing' as const);
      expect(closed, 'app.close() ends in its bound').not.toBe('still closing');
      expect((closed as { ok: boolean }).ok).toBe(true);
      const closeMs = (closed as { at: number }).at - closeStarted;
      const browsed = await within(browsing, 15_000, 'still pending' as const);
      expect(browsed, 'the browse settles').not.toBe('still pending');
      const result = browsed as Exclude<typeof browsed, 'still pending'>;
      console.log(
        `[dead letters 5, ${queueType}] close took ${closeMs} ms; browse ${result.ok ? `resolved ${result.value.letters.length} of ${result.value.total}` : `rejected: ${String(result.error)}`} ${result.at - closeStarted} ms after the close began`,
      );
      if (result.ok) {
        expect(messageIds(result.value)).toEqual(sent);
      } else {
        expect(result.error).toBeInstanceOf(ConnectionLostError);
      }
      expect(await takeAll(dlq, 50)).toEqual(sent);
    },
    60_000,
  );

  describe('6: the console with its broker out of reach', () => {
    const OPERATOR = { 'x-operator': 'on-call' };

    @Injectable()
    class OperatorGuard implements CanActivate {
      canActivate(context: ExecutionContext): boolean {
        return context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-operator'] === OPERATOR['x-operator'];
      }
    }

    it('the overview answers in time with the problem shown; pages and actions answer with an error and change nothing', async () => {
      const proxy = await TcpProxy.start();
      proxies.push(proxy);
      const queue = rig.broker.queue(unique('dl-console'), []);
      const dlq = `${queue}.dlq`;

      @Module({
        imports: [
          MessagingModule.forRoot({
            uri: proxy.url(),
            serviceName: unique('svc-console'),
            heartbeatSeconds: 2,
            reconnect: { initialDelayMs: 50, maxDelayMs: 250 },
          }),
          MessagingConsoleModule.forRoot({ guard: OperatorGuard }),
        ],
        providers: [failingHandler(queue, 'classic')],
      })
      class ConsoleApp {}

      const logger = new CaptureLogger();
      const app: INestApplication = await NestFactory.create(ConsoleApp, { logger, abortOnError: false });
      apps.push({ app, closed: false });
      await app.listen(0, '127.0.0.1');
      const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}/messaging`;
      const sent = await fill(dlq, 5, 'console');

      /** A request as an operator's script makes it, bounded: how long it took, its status and body. */
      async function call(path: string, init: RequestInit = {}) {
        const started = Date.now();
        const response = await fetch(`${base}${path}`, {
          ...init,
          redirect: 'manual',
          headers: { ...OPERATOR, ...(init.headers as Record<string, string>) },
          signal: AbortSignal.timeout(15_000),
        });
        return { status: response.status, text: await response.text(), ms: Date.now() - started, headers: response.headers };
      }

      // Before the fault: the CSRF cookie and its token, and the letters' ids.
      const overviewJson = await call('/api/overview');
      expect(overviewJson.status).toBe(200);
      const { csrfToken } = JSON.parse(overviewJson.text) as { csrfToken: string };
      const cookie = overviewJson.headers.get('set-cookie')!.split(';')[0];
      const target = `connection=default&queue=${encodeURIComponent(queue)}`;
      const lettersBefore = JSON.parse((await call(`/api/dead-letters?${target}`)).text) as {
        letters: Array<{ id: string; messageId: string }>;
      };
      expect(lettersBefore.letters.map((letter) => letter.messageId)).toEqual(sent);
      const [one, two] = lettersBefore.letters.map((letter) => letter.id);

      proxy.cut();
      const health = app.get(MessagingHealth);
      await waitFor(() => !health.isConnected(), 'the app to see the connection gone');

      const page = await call('');
      console.log(`[console 6] overview: ${page.status} in ${page.ms} ms`);
      expect([200, 503]).toContain(page.status);
      expect(page.ms).toBeLessThan(8_000);
      if (page.status === 200) {
        expect(page.text).toMatch(/Not ready: (reconnecting|not connected)/);
        expect(page.text).toContain('not connected');
        expect(page.text).toMatch(/class="problem">[^<]+</);
      }
      const json = await call('/api/overview');
      expect(json.status).toBe(200);
      const overview = JSON.parse(json.text) as {
        connections: Array<{ ready: boolean; connected: boolean; handlers: Array<{ problem?: string; summary: { baseQueue: string } }> }>;
      };
      expect(overview.connections[0]).toMatchObject({ ready: false, connected: false });
      expect(overview.connections[0].handlers.find((handler) => handler.summary.baseQueue === queue)?.problem).toBeTruthy();

      const lettersPage = await call(`/dead-letters?${target}`);
      const lettersApi = await call(`/api/dead-letters?${target}`);
      const actions = [
        await call('/api/dead-letters/replay', {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
          body: JSON.stringify({ connection: 'default', queue, ids: [one] }),
        }),
        await call('/api/dead-letters/delete', {
          method: 'POST',
          headers: { cookie, 'x-csrf-token': csrfToken, 'content-type': 'application/json' },
          body: JSON.stringify({ connection: 'default', queue, id: two }),
        }),
        await call('/dead-letters/replay', {
          method: 'POST',
          headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' },
          body: new URLSearchParams({ connection: 'default', queue, all: '1', _csrf: csrfToken }).toString(),
        }),
      ];
      console.log(
        `[console 6] while cut: dead-letter page ${lettersPage.status} (${lettersPage.ms} ms), api ${lettersApi.status}, actions ${actions
          .map((action) => `${action.status} (${action.ms} ms) ${action.text.slice(0, 120)}`)
          .join('; ')}`,
      );
      for (const answer of [lettersPage, lettersApi, ...actions]) {
        expect(answer.ms).toBeLessThan(8_000);
        expect(answer.status, `${answer.status} ${answer.text}`).toBe(503);
      }
      // A browser's page (and a page's form) gets a page of the console saying so; the API gets JSON.
      for (const page of [lettersPage, actions[2]]) {
        expect(page.headers.get('content-type')).toMatch(/^text\/html/);
        expect(page.text).toContain('<h1>503 Service Unavailable</h1>');
        expect(page.text).toContain('Back to handlers and queues');
      }
      for (const api of [lettersApi, actions[0], actions[1]]) {
        expect(api.headers.get('content-type')).toMatch(/^application\/json/);
        expect(JSON.parse(api.text)).toMatchObject({ statusCode: 503 });
      }

      proxy.resume();
      await waitFor(() => health.isConnected(), 'the app connected again', 15_000);
      const lettersAfter = JSON.parse((await call(`/api/dead-letters?${target}`)).text) as {
        total: number;
        letters: Array<{ messageId: string }>;
      };
      expect(lettersAfter.total).toBe(5);
      expect(lettersAfter.letters.map((letter) => letter.messageId)).toEqual(sent);
      expect(await takeAll(dlq, 5)).toEqual(sent);
    }, 60_000);
  });
  it.each<QueueType>(['classic', 'quorum'])(
    '7: the connection cut as discard acks its letter on a %s .dlq: its count never claims a removal that did not happen',
    async (queueType) => {
      const { proxy, queue, dlq, app, deadLetters } = await startBehindProxy('dl-ack', queueType);
      const sent = await fill(dlq, 10, 'ack');
      const page = await deadLetters.browse(queue);
      let cutAt = 0;
      // The ack is written after the cut: it never reaches the broker.
      probe(app, dlq, {
        onAck: () => {
          if (cutAt === 0) {
            proxy.cut();
            cutAt = Date.now();
          }
        },
      });
      const discarded = await within(outcome(deadLetters.discard(queue, [idOf(page, 'ack-3')])), 15_000, 'still pending' as const);
      expect(cutAt, 'the cut came as the letter was acked').toBeGreaterThan(0);
      expect(discarded, 'the discard settles').not.toBe('still pending');
      const result = discarded as Exclude<typeof discarded, 'still pending'>;
      await waitFor(async () => (await rig.broker.depth(dlq)) >= 9, 'the letters back in the .dlq', 10_000);
      proxy.resume();
      await waitFor(() => app.get(MessagingHealth).isConnected(), 'the app connected again', 15_000);
      const left = messageIds(await deadLetters.browse(queue));
      console.log(
        `[dead letters 7, ${queueType}] discard ${result.ok ? `resolved ${result.value}` : `rejected: ${String(result.error)}`} ${result.at - cutAt} ms after the cut; ${left.length} letters left`,
      );
      const without3 = sent.filter((id) => id !== 'ack-3');
      if (result.ok && result.value === 1) expect(left, 'discard said 1: the letter must be gone').toEqual(without3);
      else if (result.ok) expect(left).toEqual(sent);
      // A rejection leaves the outcome open: the ack may or may not have arrived.
      else expect([sent, without3]).toContainEqual(left);
      expect(await takeAll(dlq, left.length)).toEqual(left);
    },
    60_000,
  );

  it.each<QueueType>(['classic', 'quorum'])(
    '8: the connection cut as a browse of a %s .dlq closes its channel: the browse resolves its page, the next operation is not held up',
    async (queueType) => {
      const { proxy, queue, dlq, app, deadLetters } = await startBehindProxy('dl-shut', queueType);
      const sent = await fill(dlq, 20, 'shut');
      let cutAt = 0;
      // The page is read whole; the connection goes as its channel is closed (amqplib then never
      // answers that close).
      probe(app, dlq, {
        onClose: () => {
          if (cutAt === 0) {
            proxy.cut();
            cutAt = Date.now();
          }
        },
      });
      const browsed = await within(outcome(deadLetters.browse(queue)), 15_000, 'still pending' as const);
      expect(cutAt, 'the cut came as the channel closed').toBeGreaterThan(0);
      expect(browsed, 'the browse settles').not.toBe('still pending');
      const result = browsed as Exclude<typeof browsed, 'still pending'>;
      console.log(
        `[dead letters 8, ${queueType}] browse ${result.ok ? `resolved ${result.value.letters.length} of ${result.value.total}` : `rejected: ${String(result.error)}`} ${result.at - cutAt} ms after the cut`,
      );
      // Read whole before the cut: the page stands.
      expect(result.ok && messageIds(result.value)).toEqual(sent);
      await waitFor(async () => (await rig.broker.depth(dlq)) === 20, 'the 20 letters back in the .dlq', 10_000);
      proxy.resume();
      await waitFor(() => app.get(MessagingHealth).isConnected(), 'the app connected again', 15_000);
      // Operations on one .dlq run one at a time: one that never ended would hold every later one.
      const again = await within(deadLetters.browse(queue), 10_000, 'still pending' as const);
      expect(again === 'still pending' ? again : messageIds(again)).toEqual(sent);
      expect(await takeAll(dlq, 20)).toEqual(sent);
    },
    60_000,
  );
});
