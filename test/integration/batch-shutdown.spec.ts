import { Injectable } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { HandlerConsumers } from '../../lib/nest/handler-consumers';
import { appModule, startApp } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

/** Much longer than shutdownTimeoutMs: only the shutdown can make a partial batch run in time. */
const BATCH_TIMEOUT_MS = 1500;
const SHUTDOWN_TIMEOUT_MS = 300;

/**
 * RELIABILITY.md 55: a batch being gathered when shutdown begins goes to its handler before
 * close() resolves, on every path: a batch handler alone on its queue, and one behind
 * `messageType` routing (which wraps its collector). No handler runs after close() resolved, and
 * no batch timer is left to fire later.
 */
describe('batch handlers at shutdown', () => {
  let broker: Broker;

  beforeAll(async () => (broker = await Broker.open()));
  afterAll(async () => broker.cleanup());

  for (const routed of [false, true]) {
    it(`${routed ? 'behind messageType routing' : 'alone on its queue'}: a partial batch runs before close() resolves, never after, and its messages are acked`, async () => {
      const queue = broker.queue(unique('batch-close'), []);
      const runs: Array<{ ids: string[]; at: number }> = [];
      @Injectable()
      class Batcher {
        @MessageHandler({
          queue,
          retry: false,
          batch: { size: 10, timeoutMs: BATCH_TIMEOUT_MS },
          ...(routed ? { messageType: 'order' } : {}),
        })
        handle(_payloads: unknown[], contexts: MessageContext[]) {
          runs.push({ ids: contexts.map((c) => c.messageId ?? '-').sort(), at: Date.now() });
        }
      }
      const app = await startApp(appModule({ shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS }, { providers: [Batcher] }));
      const client = app.get(RpcClient);
      const ids = (await Promise.all([0, 1, 2].map((i) => client.send(queue, { i }, { type: 'order' })))).sort();
      await waitFor(() => app.get(HandlerConsumers).inFlight === 3, 'the 3 messages gathered into a batch');

      const started = Date.now();
      await app.close();
      const closedAt = Date.now();
      // Proving that nothing runs later takes waiting: past the batch timeout, a timer left
      // behind would have fired by now.
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, started + BATCH_TIMEOUT_MS + 300 - Date.now())));
      console.log(
        `[reliability 55] ${routed ? 'routed' : 'alone'}: close() took ${closedAt - started} ms; runs ${JSON.stringify(runs.map((r) => ({ size: r.ids.length, afterCloseMs: r.at - closedAt })))}`,
      );

      expect({
        beforeClose: runs.filter((r) => r.at <= closedAt).map((r) => r.ids),
        afterClose: runs.filter((r) => r.at > closedAt).map((r) => r.ids),
      }).toEqual({ beforeClose: [ids], afterClose: [] });
      expect(await broker.depth(queue)).toBe(0);
    });
  }
});
