import { Injectable } from '@nestjs/common';
import {
  ConnectionLostError,
  MessageHandler,
  MessagingError,
  MessagingHealth,
  PublishTimeoutError,
  RpcClient,
  type MessageContext,
} from '../../lib';
import { appModule } from '../support/app';
import { unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, faultRig, MB, outcome, sampleRss, sleep, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md 2 (stalled, half-open socket) and 3 (broker unreachable while the app publishes),
 * injected with a TCP proxy between the app and the rig.broker.
 */
describe('reliability: network faults through a TCP proxy', () => {
  const rig = faultRig();
  const { apps, proxies } = rig;

  function echoHandlers(queue: string, tally: Tally) {
    @Injectable()
    class Echo {
      @MessageHandler({ queue })
      echo(payload: unknown, context: MessageContext) {
        tally.see(context.messageId);
        return payload;
      }
    }
    return Echo;
  }

  it('2: a stalled socket is detected by heartbeat: pending send and request reject with typed errors, then it reconnects', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const serviceName = unique('svc-stall');
    const queue = rig.broker.queue(unique('stall'));
    const tally = new Tally();
    const logger = new CaptureLogger();
    const app = await startAppLogged(
      appModule(
        {
          uri: proxy.url(),
          serviceName,
          heartbeatSeconds: 1,
          publishTimeoutMs: 6000,
          rpcTimeoutMs: 12_000,
          reconnect: { initialDelayMs: 100, maxDelayMs: 500 },
        },
        { providers: [echoHandlers(queue, tally)] },
      ),
      logger,
    );
    apps.push(app);
    const client = app.get(RpcClient);
    expect(await client.request(queue, { ping: 1 })).toEqual({ ping: 1 });

    const stalledAt = Date.now();
    proxy.stall();
    const sending = outcome(client.send(queue, { during: 'stall' }, { messageId: 'stalled-send' }));
    const requesting = outcome(client.request(queue, { during: 'stall' }));

    const requested = await requesting;
    const sent = await sending;
    const detectedAt = logger.firstAt(/publisher connection .* was lost/, stalledAt);
    const figures = {
      heartbeatDetectionMs: detectedAt === undefined ? undefined : detectedAt - stalledAt,
      requestRejectedAfterMs: requested.at - stalledAt,
      requestError: requested.ok ? 'resolved' : String((requested as { error: unknown }).error),
      sendRejectedAfterMs: sent.at - stalledAt,
      sendError: sent.ok ? 'resolved' : String((sent as { error: unknown }).error),
    };
    console.log(`[reliability 2] stalled socket: ${JSON.stringify(figures)}`);
    expect(logger.matching(/Heartbeat timeout/).length).toBeGreaterThan(0);
    expect(detectedAt! - stalledAt).toBeLessThan(5000);
    // The request waits on a reply channel that is gone: it fails with the loss, long before its 12 s timeout.
    expect(requested.ok).toBe(false);
    expect((requested as { error: unknown }).error).toBeInstanceOf(ConnectionLostError);
    expect(requested.at - stalledAt).toBeLessThan(6000);
    // The send is never confirmed while stalled: it rejects with a typed error by its publish timeout.
    expect(sent.ok).toBe(false);
    expect((sent as { error: unknown }).error).toBeInstanceOf(MessagingError);
    expect(sent.at - stalledAt).toBeLessThan(6000 + 1500);

    proxy.resume();
    const resumedAt = Date.now();
    await waitFor(() => app.get(MessagingHealth).isConnected(), 'the reconnect after the stall', 20_000);
    console.log(`[reliability 2] reconnected ${Date.now() - resumedAt} ms after the network came back`);
    expect(await client.request(queue, { ping: 2 }, { timeoutMs: 5000 })).toEqual({ ping: 2 });
    const id = await client.send(queue, { after: 'stall' });
    await waitFor(() => tally.handled.has(id), 'a send after the stall to be handled');
  }, 60_000);

  it('3: broker unreachable while publishing: sends wait publishTimeoutMs then reject; maxBufferedPublishes bounds the wait queue; memory stays bounded', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    const serviceName = unique('svc-down');
    const queue = rig.broker.queue(unique('down'));
    const tally = new Tally();
    const logger = new CaptureLogger();
    const maxBuffered = 50;
    const app = await startAppLogged(
      appModule(
        {
          uri: proxy.url(),
          serviceName,
          publishTimeoutMs: 1500,
          maxBufferedPublishes: maxBuffered,
          reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
        },
        { providers: [echoHandlers(queue, tally)] },
      ),
      logger,
    );
    apps.push(app);
    const client = app.get(RpcClient);
    await client.send(queue, { warmup: true });

    const cutAt = Date.now();
    proxy.cut();
    await waitFor(() => logger.firstAt(/publisher connection .* was lost/, cutAt) !== undefined, 'the publisher to notice the cut');
    await waitFor(() => proxy.refused > 0, 'a refused reconnect attempt');

    // (a) publishTimeoutMs: the first `maxBuffered` wait, then fail; the rest fail at once.
    const startedAt = Date.now();
    const waiting = Array.from({ length: maxBuffered }, (_, i) => outcome(client.send(queue, { i }, { messageId: `wait-${i}` })));
    const overflow = Array.from({ length: 25 }, (_, i) => outcome(client.send(queue, { i }, { messageId: `over-${i}` })));
    const overflowResults = await Promise.all(overflow);
    const waitResults = await Promise.all(waiting);
    for (const r of overflowResults) {
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).toBeInstanceOf(PublishTimeoutError);
      expect(String((r as { error: unknown }).error)).toMatch(/maxBufferedPublishes/);
      expect(r.at - startedAt).toBeLessThan(500);
    }
    for (const r of waitResults) {
      expect(r.ok).toBe(false);
      expect((r as { error: unknown }).error).toBeInstanceOf(PublishTimeoutError);
      expect(r.at - startedAt).toBeGreaterThanOrEqual(1450);
      expect(r.at - startedAt).toBeLessThan(1500 + 1000);
    }
    expect(String((waitResults[0] as { error: unknown }).error)).toMatch(/unreachable/);
    expect(String((waitResults[0] as { error: unknown }).error)).not.toContain('guest:guest');

    // (b) a flood while down: memory stays bounded, every promise settles at once or by its timeout.
    const rss = sampleRss();
    const baseline = process.memoryUsage().rss;
    const flood = 20_000;
    const body = { blob: 'x'.repeat(1000) };
    const floodStarted = Date.now();
    const floodResults = await Promise.all(
      Array.from({ length: flood }, (_, i) => outcome(client.send(queue, body, { messageId: `flood-${i}` }))),
    );
    const { peak } = rss.stop();
    // Refused at once (the wait queue was full) vs. waited for the connection until the timeout.
    const errorOf = (r: { ok: boolean }) => String((r as { error?: unknown }).error);
    const refused = floodResults.filter((r) => !r.ok && /maxBufferedPublishes/.test(errorOf(r))).length;
    const timedOut = floodResults.filter((r) => !r.ok && /gave up after waiting/.test(errorOf(r))).length;
    console.log(
      `[reliability 3] ${flood} sends while unreachable (${Date.now() - floodStarted} ms): ${refused} refused at once (buffer full), ` +
        `${timedOut} waited then timed out; RSS baseline ${(baseline / MB).toFixed(0)} MB, peak ${(peak / MB).toFixed(0)} MB`,
    );
    expect(floodResults.every((r) => !r.ok && (r as { error: unknown }).error instanceof PublishTimeoutError)).toBe(true);
    expect(timedOut).toBeLessThanOrEqual(maxBuffered);
    expect(refused + timedOut).toBe(flood);
    expect(peak - baseline).toBeLessThan(200 * MB);

    // (c) sends that are still waiting when the broker comes back are delivered: nothing lost.
    const pending = Array.from({ length: 20 }, (_, i) => outcome(client.send(queue, { i }, { messageId: `back-${i}`, timeoutMs: 10_000 })));
    await sleep(500);
    const resumedAt = Date.now();
    proxy.resume();
    const backResults = await Promise.all(pending);
    await waitFor(() => app.get(MessagingHealth).isConnected(), 'the reconnect');
    const confirmed = backResults.filter((r) => r.ok).length;
    await waitFor(
      () => Array.from({ length: 20 }, (_, i) => `back-${i}`).every((id) => tally.handled.has(id)),
      'the 20 buffered sends handled',
    );
    await sleep(200);
    const everRejectedHandled = [...tally.handled].filter(
      (id) => id.startsWith('wait-') || id.startsWith('over-') || id.startsWith('flood-'),
    ).length;
    console.log(
      `[reliability 3] after the broker came back (${Date.now() - resumedAt} ms): 20 buffered sends, ${confirmed} confirmed, ` +
        `handled ${tally.handled.size - 1} (duplicates ${tally.duplicates}), rejected-but-handled ${everRejectedHandled}, queued ${await rig.broker.depth(queue)}`,
    );
    expect(confirmed).toBe(20);
    expect(everRejectedHandled).toBe(0);
  }, 60_000);
});
