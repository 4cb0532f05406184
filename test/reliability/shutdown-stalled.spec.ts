import { Injectable } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { deferred, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, faultRig, startAppLogged, within } from './helpers';

const SHUTDOWN_TIMEOUT_MS = 1000;
/**
 * What close() may take beyond shutdownTimeoutMs when the broker never answers: the consumers'
 * close (put-back copies and channel close, 2 s in all), the publishers' channel close (2 s) and
 * the connections' close (3 s, both at once); plus 1 s of slack for a busy machine.
 */
const MARGIN_MS = 8000;

/**
 * RELIABILITY.md 47 (and 42 with consumers): the app's consumer and publisher connections go
 * through a proxy that stalls THIS app's sockets (half-open: nothing closed, nothing arrives),
 * with handlers registered and one message in flight in a handler that ignores its abort signal.
 * close() must return within shutdownTimeoutMs + MARGIN_MS, heartbeat on and off, and the message
 * must not be lost: a fresh app gets it again.
 */
describe('reliability: shutdown on a stalled socket, with handlers running', () => {
  const rig = faultRig();

  for (const heartbeatSeconds of [1, 0]) {
    it(`47: heartbeat ${heartbeatSeconds ? `${heartbeatSeconds} s` : 'off (0)'}: app.close() returns within shutdownTimeoutMs + ${MARGIN_MS} ms; the in-flight message is delivered again`, async () => {
      const proxy = await TcpProxy.start();
      rig.proxies.push(proxy);
      const queue = rig.broker.queue(unique('stalled'));
      const idle = rig.broker.queue(unique('stalled-idle'));
      const seen: string[] = [];
      const started = deferred<string>();
      const release = deferred();
      let stuck = true;
      @Injectable()
      class Handlers {
        @MessageHandler({ queue, prefetch: 1 })
        async busy(_payload: unknown, context: MessageContext) {
          seen.push(context.messageId);
          started.resolve(context.messageId);
          // Ignores its signal: shutdown must be bounded whatever the handler does.
          if (stuck) await release.promise;
        }

        @MessageHandler({ queue: idle })
        idle() {}
      }
      const serviceName = unique('svc-stalled');
      const app = await startAppLogged(
        appModule({ serviceName, uri: proxy.url(), heartbeatSeconds, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS }, { providers: [Handlers] }),
        new CaptureLogger(),
      );
      rig.apps.push(app);
      const id = await app.get(RpcClient).send(queue, { n: 1 });
      expect(await started.promise).toBe(id);
      expect(proxy.open).toBe(2); // this app's consumer and publisher connections, nobody else's

      proxy.stall();
      const begin = Date.now();
      const result = await within(
        app.close().then(() => 'closed'),
        30_000,
        'still closing after 30 s',
      );
      const tookMs = Date.now() - begin;
      console.log(
        `[reliability 47] heartbeat ${heartbeatSeconds} s, stalled socket, 1 message in flight: close() ${result} in ${tookMs} ms (shutdownTimeoutMs ${SHUTDOWN_TIMEOUT_MS})`,
      );
      expect(result).toBe('closed');
      expect(tookMs).toBeLessThan(SHUTDOWN_TIMEOUT_MS + MARGIN_MS);

      // Not lost: the broker requeues it once the app's sockets are gone, and a fresh app gets it.
      stuck = false;
      release.resolve();
      const fresh = await startAppLogged(appModule({ serviceName: unique('svc-fresh') }, { providers: [Handlers] }), new CaptureLogger());
      rig.apps.push(fresh);
      await waitFor(
        () => seen.filter((seenId) => seenId === id).length >= 2,
        'the in-flight message delivered again to a fresh app',
        15_000,
      );
      await fresh.close();
    }, 60_000);
  }
});
