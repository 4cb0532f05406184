import { inspect } from 'node:util';
import type { INestApplicationContext } from '@nestjs/common';
import { BrokerRefusedError, BrokerUnreachableError, RpcClient } from '../../lib';
import { appModule } from '../support/app';
import { BROKER_PORT, unique, waitFor } from '../support/broker';
import { TcpProxy } from '../support/tcp-proxy';
import { CaptureLogger, closedPort, connectionsOf, countingHandler, faultRig, outcome, sleep, startAppLogged, Tally } from './helpers';

/**
 * RELIABILITY.md 4 (broker unreachable at startup: fail fast with a clear error, or keep retrying)
 * and 28 (credentials never in logs or errors).
 */
describe('reliability: startup without a broker', () => {
  const rig = faultRig();
  const { apps, proxies } = rig;

  /** Every place a secret could leak from an error: message, stack, cause chain, inspection. */
  function everythingAbout(error: unknown): string {
    const e = error as Error & { cause?: unknown };
    return [
      String(e),
      e.message,
      e.stack,
      inspect(e, { depth: 10 }),
      JSON.stringify(e),
      String(e.cause),
      (e.cause as Error | undefined)?.stack,
    ].join('\n');
  }

  it('4 + 28: nothing listens: BrokerUnreachableError within startupTimeoutMs, URL named with its password masked, password in no log line', async () => {
    const port = await closedPort();
    const url = `amqp://guest:s3cret@127.0.0.1:${port}`;
    const logger = new CaptureLogger();
    const queue = rig.broker.queue(unique('nobroker'));
    const startupTimeoutMs = 1500;
    const started = Date.now();
    const result = await outcome(
      startAppLogged(
        appModule(
          { uri: url, serviceName: unique('svc-nobroker'), reconnect: { startupTimeoutMs, initialDelayMs: 100, maxDelayMs: 400 } },
          { providers: [countingHandler(queue, new Tally())] },
        ),
        logger,
      ),
    );
    const elapsed = Date.now() - started;
    expect(result.ok).toBe(false);
    const error = (result as { error: unknown }).error as Error;
    console.log(
      `[reliability 4] startup without a broker failed after ${elapsed} ms (startupTimeoutMs ${startupTimeoutMs}): ${error.message}`,
    );
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect(elapsed).toBeLessThan(startupTimeoutMs + 1000);
    expect(elapsed).toBeGreaterThanOrEqual(startupTimeoutMs - 400 - 100); // gives up only when the next wait would pass the deadline
    expect(error.message).toContain(`amqp://guest:***@127.0.0.1:${port}`);
    expect(everythingAbout(error)).not.toContain('s3cret');
    expect(logger.lines.length).toBeGreaterThan(0);
    expect(logger.matching(/Cannot connect/).length).toBeGreaterThan(0);
    expect(logger.text).not.toContain('s3cret');
  }, 20_000);

  it('4 + 28: the broker refuses the credentials: BrokerRefusedError at once (not after startupTimeoutMs), naming the user, password masked everywhere', async () => {
    const url = `amqp://guest:s3cret-pw@127.0.0.1:${BROKER_PORT}`;
    const logger = new CaptureLogger();
    const started = Date.now();
    // The default startupTimeoutMs (15 s): a refusal must not wait it out.
    const result = await outcome(
      startAppLogged(appModule({ uri: url, serviceName: unique('svc-badpw'), registerHandlers: false }), logger),
    );
    const error = (result as { error: unknown }).error as Error;
    const tookMs = Date.now() - started;
    console.log(`[reliability 28] wrong password: failed after ${tookMs} ms: ${error?.message}`);
    expect(result.ok).toBe(false);
    expect(error).toBeInstanceOf(BrokerRefusedError);
    expect(error).toBeInstanceOf(BrokerUnreachableError);
    expect(tookMs).toBeLessThan(5_000);
    expect(error.message).toContain(`amqp://guest:***@127.0.0.1:${BROKER_PORT}`);
    expect(error.message).toContain('refused the login of user "guest" (403 ACCESS_REFUSED)');
    expect(everythingAbout(error)).not.toContain('s3cret-pw');
    expect(logger.text).not.toContain('s3cret-pw');
  }, 20_000);

  it('4: the broker has no such vhost: BrokerRefusedError at once, naming the vhost and the user, and how to make it', async () => {
    const vhost = unique('no-such-vhost');
    const started = Date.now();
    const result = await outcome(
      startAppLogged(
        appModule({
          uri: `amqp://guest:guest@127.0.0.1:${BROKER_PORT}/${vhost}`,
          serviceName: unique('svc-vhost'),
          registerHandlers: false,
        }),
        new CaptureLogger(),
      ),
    );
    const error = (result as { error: unknown }).error as Error;
    console.log(`[reliability 4] unknown vhost: failed after ${Date.now() - started} ms: ${error?.message}`);
    expect(error).toBeInstanceOf(BrokerRefusedError);
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(error.message).toContain(`refused vhost "${vhost}" to user "guest"`);
    expect(error.message).toContain(`rabbitmqctl add_vhost ${vhost}`);
  }, 20_000);

  it('4: with startupTimeoutMs Infinity the app waits for the broker and starts when it comes', async () => {
    const proxy = await TcpProxy.start();
    proxies.push(proxy);
    proxy.cut();
    const serviceName = unique('svc-wait');
    const queue = rig.broker.queue(unique('wait'));
    const tally = new Tally();
    const logger = new CaptureLogger();
    const starting = outcome(
      startAppLogged(
        appModule(
          { uri: proxy.url(), serviceName, reconnect: { startupTimeoutMs: Infinity, initialDelayMs: 100, maxDelayMs: 400 } },
          { providers: [countingHandler(queue, tally)] },
        ),
        logger,
      ),
    );
    await waitFor(() => proxy.refused >= 3, 'three refused connection attempts');
    await sleep(300);
    const resumedAt = Date.now();
    proxy.resume();
    const result = await starting;
    expect(result.ok).toBe(true);
    const app = (result as { value: INestApplicationContext }).value;
    apps.push(app);
    console.log(
      `[reliability 4] startupTimeoutMs Infinity: started ${result.at - resumedAt} ms after the broker came back (after ${proxy.refused} refused attempts)`,
    );
    expect(result.at - resumedAt).toBeLessThan(3000);
    const id = await app.get(RpcClient).send(queue, { hello: 1 });
    await waitFor(() => tally.handled.has(id), 'the first message');
    expect(await connectionsOf(serviceName)).toHaveLength(2);
  }, 30_000);
});
