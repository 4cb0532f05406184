import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { CaptureLogger, MB, sampleRss, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md 6: `channel.publish` returns false under a flood; the publisher waits for 'drain'
 * instead of buffering without bound. 100,000 unawaited sends of ~8 KB: every promise settles,
 * every message is handled once, and the process RSS stays bounded.
 */
describe('reliability: publish flood', () => {
  let broker: Broker;
  let app: INestApplicationContext | undefined;

  beforeAll(async () => {
    broker = await Broker.open();
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup();
  });

  it('6: 100,000 unawaited 8 KB sends all settle and are handled; peak RSS stays bounded', async () => {
    const queue = broker.queue(unique('flood'));
    const tally = new Tally();
    @Injectable()
    class Sink {
      @MessageHandler({ queue, prefetch: 500 })
      handle(_payload: unknown, context: MessageContext) {
        tally.see(context.messageId);
      }
    }
    const logger = new CaptureLogger();
    app = await startAppLogged(appModule({ serviceName: unique('svc-flood'), publishTimeoutMs: 55_000 }, { providers: [Sink] }), logger);
    const client = app.get(RpcClient);
    await client.send(queue, { warmup: true }, { messageId: 'warmup' });
    await waitFor(() => tally.handled.has('warmup'), 'the warm-up message');
    global.gc?.();
    const baseline = process.memoryUsage().rss;
    const baselineHeap = process.memoryUsage().heapUsed;
    const rss = sampleRss(20);

    const total = 100_000;
    // One shared 8 KB string: the callers' payload objects stay small, while a publisher that kept
    // every encoded body would hold 800 MB. Transient, so the broker keeps them in memory only.
    const blob = 'x'.repeat(8 * 1024);
    let resolved = 0;
    let rejected = 0;
    const errors = new Map<string, number>();
    const started = Date.now();
    for (let i = 0; i < total; i++) {
      client.send(queue, { i, blob }, { messageId: `f-${i}`, persistent: false }).then(
        () => resolved++,
        (error: Error) => {
          rejected++;
          errors.set(error.name, (errors.get(error.name) ?? 0) + 1);
        },
      );
    }
    const submittedMs = Date.now() - started;
    // Everything is accepted now and nearly nothing confirmed: the most the process ever holds.
    // Measured as live heap after a full GC (npm test runs Node with --expose-gc), which unlike RSS
    // does not depend on when V8 chooses to collect.
    global.gc?.();
    const liveHeapGrowth = process.memoryUsage().heapUsed - baselineHeap;
    await waitFor(() => resolved + rejected === total, 'every send promise to settle', 50_000);
    const settledMs = Date.now() - started;
    await waitFor(() => tally.handled.size >= total + 1, 'every message handled', 30_000).catch(() => undefined);
    const handledMs = Date.now() - started;
    const { peak, samples } = rss.stop();
    const figures = {
      sent: total,
      resolved,
      rejected,
      errors: Object.fromEntries(errors),
      handled: tally.handled.size - 1,
      duplicates: tally.duplicates,
      stillQueued: await broker.depth(queue),
      submitMs: submittedMs,
      allConfirmedMs: settledMs,
      allHandledMs: handledMs,
      rssBaselineMB: Math.round(baseline / MB),
      rssPeakMB: Math.round(peak / MB),
      rssGrowthMB: Math.round((peak - baseline) / MB),
      liveHeapGrowthMB: Math.round(liveHeapGrowth / MB),
      rssSamples: samples,
      // Duplicates come from redeliveries after a lost channel or connection: these say why.
      warnings: logger.lines
        .filter((l) => l.level === 'warn' || l.level === 'error')
        .map((l) => l.text.slice(0, 160))
        .slice(0, 5),
    };
    console.log(`[reliability 6] flood of ${total} x 8 KB sends: ${JSON.stringify(figures)}`);
    expect(resolved).toBe(total);
    expect(rejected).toBe(0);
    expect(figures.handled + figures.stillQueued).toBe(total);
    expect(figures.handled).toBe(total);
    // The callers' 100,000 pending promises and message objects are inherent (150-420 MB measured,
    // depending on what the heap already holds); encoded bodies are not: the publisher holds at most
    // maxInFlightPublishes (2,048) of them, 16 MB. Buffering all of them would add 800 MB.
    if (global.gc) expect(liveHeapGrowth).toBeLessThan(750 * MB);
    // RSS follows the garbage collector's timing; it only has to stay far from unbounded.
    expect(peak - baseline).toBeLessThan(1024 * MB);
  }, 60_000);
});
