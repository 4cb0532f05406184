import { Injectable } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { deferred, rabbitmqctl, unique, waitFor } from '../support/broker';
import { CaptureLogger, faultRig, startAppLogged, Tally } from './helpers';

/**
 * A retry copy waits in `<queue>.retry.<ms>ms` until its TTL dead-letters it back into `<queue>`
 * (found by the chaos soak, RELIABILITY.md 43). If an operator deleted `<queue>` meanwhile,
 * RabbitMQ's classic dead-lettering (at-most-once: no confirm, no mandatory) drops the copy.
 * Quorum retry queues dead-letter at-least-once: the copy stays in the retry queue until
 * `<queue>` exists again and confirms it.
 */
describe('reliability: the retry path survives its queue being deleted', () => {
  const rig = faultRig();
  /** Long enough for the app to close and the queue to be deleted before the copy comes back. */
  const DELAY_MS = 3000;
  /**
   * RabbitMQ's at-least-once dead-letter worker tries an unroutable message again every
   * `dead_letter_worker_publisher_confirm_timeout` (180 s by default), counted from when the
   * message was dead-lettered.
   * The worker reads that timeout when its queue starts: a retry queue declared while it is set
   * lower tries again that often, so the test sees the copy handled in seconds, on every run.
   * Set only around the declaration and restored at once: no other queue's worker starts meanwhile
   * (test files run one at a time).
   */
  const CONFIRM_TIMEOUT_MS = 2_000;

  async function withDeadLetterConfirmTimeout<T>(ms: number, work: () => Promise<T>): Promise<T> {
    const setting = 'rabbit, dead_letter_worker_publisher_confirm_timeout';
    const before = (await rabbitmqctl('eval', `application:get_env(${setting}).`)).trim();
    await rabbitmqctl('eval', `application:set_env(${setting}, ${ms}).`);
    try {
      return await work();
    } finally {
      await rabbitmqctl(
        'eval',
        before === 'undefined'
          ? `application:unset_env(${setting}).`
          : `application:set_env(${setting}, ${before.replace(/^\{ok,(.*)\}$/, '$1')}).`,
      );
    }
  }

  type QueueType = 'quorum' | 'classic';

  /** An app whose handler on `queue` throws on try 1 (calling `onFailedTry`) and counts try 2 in `tally`. */
  async function start(queue: string, type: QueueType, tally: Tally, onFailedTry?: () => void, delayMs = DELAY_MS) {
    @Injectable()
    class FailsOnce {
      @MessageHandler({
        queue,
        retry: { attempts: 2, delaysMs: [delayMs] },
        queueOptions: type === 'quorum' ? { arguments: { 'x-queue-type': 'quorum' } } : {},
      })
      handle(_payload: unknown, context: MessageContext) {
        if (context.attempt === 1) {
          onFailedTry?.();
          throw new Error('transient');
        }
        tally.see(context.messageId);
      }
    }
    const app = await startAppLogged(appModule({ serviceName: unique('svc-retry-path') }, { providers: [FailsOnce] }), new CaptureLogger());
    rig.apps.push(app);
    return app;
  }

  /**
   * Sends one message, lets try 1 fail, stops the app once the retry copy is confirmed in the
   * retry queue, deletes `queue` and waits until the copy's TTL has taken it out of the retry
   * queue. Resolves with the message id.
   */
  async function failThenDeleteQueueUntilTtlExpired(queue: string, type: QueueType, tally: Tally): Promise<string> {
    const retryQueue = `${queue}.retry.${DELAY_MS}ms`;
    const failed = deferred();
    const app = await withDeadLetterConfirmTimeout(CONFIRM_TIMEOUT_MS, () => start(queue, type, tally, failed.resolve));
    const id = await app.get(RpcClient).send(queue, { n: 1 });
    await failed.promise;
    await waitFor(async () => (await rig.broker.depth(retryQueue)) === 1, 'the retry copy in the retry queue');
    await app.close();
    const { messageCount } = await rig.broker.channel.deleteQueue(queue);
    // Otherwise the copy came back before the deletion and went with the queue: the test did not run.
    expect(messageCount, 'messages deleted with the handler queue').toBe(0);
    await waitFor(async () => (await rig.broker.depth(retryQueue)) === 0, 'the retry copy to expire', DELAY_MS + 5000);
    return id;
  }

  /** Messages a quorum queue holds dead-lettered but not yet confirmed by a target queue. */
  async function heldForDeadLettering(queue: string): Promise<number> {
    const out = await rabbitmqctl(
      'eval',
      `{ok, Q} = rabbit_amqqueue:lookup(rabbit_misc:r(<<"/">>, queue, <<"${queue}">>)), proplists:get_value(messages_dlx, rabbit_amqqueue:info(Q, [messages_dlx])).`,
    );
    return Number(out.trim());
  }

  it('quorum: a retry copy whose TTL expires while its queue is deleted is held by the retry queue and handled once the queue is back', async () => {
    const queue = rig.broker.queue(unique('retry-path-quorum'), [DELAY_MS]);
    const tally = new Tally();
    const id = await failThenDeleteQueueUntilTtlExpired(queue, 'quorum', tally);
    const held = await heldForDeadLettering(`${queue}.retry.${DELAY_MS}ms`);
    console.log(`[retry path] quorum: the copy expired while ${queue} was deleted; held by the retry queue: ${held}`);
    expect(held, 'copies held by the retry queue until the handler queue confirms them').toBe(1);
    // RabbitMQ retries a held copy every dead_letter_worker_publisher_confirm_timeout (set low
    // for this retry queue, see withDeadLetterConfirmTimeout).
    const startedAt = Date.now();
    await start(queue, 'quorum', tally); // declares the handler queue again
    await waitFor(() => tally.handled.has(id), 'the retry copy to be handled', CONFIRM_TIMEOUT_MS + 10_000);
    console.log(`[retry path] quorum: handled ${Date.now() - startedAt} ms after the queue was declared again`);
    expect(tally.duplicates).toBe(0);
    expect(await rig.broker.depth(`${queue}.dlq`)).toBe(0);
  }, 60_000);

  it('quorum: a retry copy the full retry queue refuses (reject-publish) puts the original back after a back-off; it retries once there is room', async () => {
    const delayMs = 5000; // how long the fillers below keep the retry queue full
    const queue = rig.broker.queue(unique('retry-path-full'), [delayMs]);
    const retryQueue = `${queue}.retry.${delayMs}ms`;
    const tally = new Tally();
    let failedTries = 0;
    const app = await start(queue, 'quorum', tally, () => failedTries++, delayMs);
    // An operator's length limit of 1, on this test's retry queue only. A quorum queue refuses
    // publishes once over its limit, until it is back under 80 % of it: two fillers, that come
    // back to the handler as tries 2, keep it full until they expire.
    const policy = unique('retry-path-full');
    await rabbitmqctl('set_policy', policy, `^${retryQueue.replace(/\./g, '\\.')}$`, '{"max-length":1}', '--apply-to', 'queues');
    try {
      for (const filler of ['filler-1', 'filler-2']) {
        rig.broker.publishRaw(retryQueue, '{}', {
          contentType: 'application/json',
          messageId: filler,
          persistent: true,
          headers: { 'x-attempts': 1 },
        });
      }
      await waitFor(async () => (await rig.broker.depth(retryQueue)) === 2, 'the fillers in the retry queue');
      const id = await app.get(RpcClient).send(queue, { n: 1 });
      await waitFor(() => failedTries >= 2, 'try 1 to come back after its copy was refused');
      expect(tally.handled.has(id)).toBe(false);
      await waitFor(() => tally.handled.has(id), 'the retry once the retry queue has room', 2 * delayMs + 15_000);
      console.log(`[retry path] full retry queue: try 1 ran ${failedTries} times before its copy was accepted`);
      expect(tally.duplicates).toBe(0);
      expect(await rig.broker.depth(`${queue}.dlq`)).toBe(0);
    } finally {
      await rabbitmqctl('clear_policy', policy);
    }
  }, 60_000);

  it('classic: the same copy is dropped by RabbitMQ (at-most-once dead-lettering), the limit docs/failures-and-retries.md states', async () => {
    const queue = rig.broker.queue(unique('retry-path-classic'), [DELAY_MS]);
    const tally = new Tally();
    await failThenDeleteQueueUntilTtlExpired(queue, 'classic', tally);
    await start(queue, 'classic', tally); // declares the handler queue again
    const depths = await Promise.all([queue, `${queue}.retry.${DELAY_MS}ms`, `${queue}.dlq`].map((q) => rig.broker.depth(q)));
    console.log(
      `[retry path] classic: after the copy expired while ${queue} was deleted: queue, retry queue, dlq hold ${depths.join(', ')}`,
    );
    expect(depths).toEqual([0, 0, 0]);
  });
});
