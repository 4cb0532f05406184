import { Injectable, ServiceUnavailableException, type INestApplicationContext } from '@nestjs/common';
import { HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { MessageHandler, MessagingHealth, RpcClient } from '../../lib';
import { MessagingHealthIndicator } from '../../lib/terminus';
import { appModule, startApp } from '../support/app';
import { Broker, deferred, unique, waitFor } from '../support/broker';
import { listConnections, rabbitmqctl } from '../support/rabbitmq-admin';

/**
 * MessagingHealthIndicator through terminus' HealthCheckService, under a real connection loss
 * (only this app's connections are closed, found by their connection name) and a real shutdown.
 */
describe('MessagingHealthIndicator (terminus)', () => {
  const serviceName = unique('svc-health');
  const queue = unique('health');
  const release = deferred();
  const started = deferred();
  let broker: Broker;
  let app: INestApplicationContext | undefined;

  @Injectable()
  class SlowHandler {
    @MessageHandler({ queue, retry: false })
    async handle(): Promise<void> {
      started.resolve();
      await release.promise;
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    app = await startApp(
      appModule(
        { serviceName },
        { imports: [TerminusModule.forRoot({ logger: false })], providers: [SlowHandler, MessagingHealthIndicator] },
      ),
    );
  });

  afterAll(async () => {
    release.resolve();
    await app?.close();
    await broker.cleanup();
  });

  const indicator = () => app!.get(MessagingHealthIndicator);
  const reason = () => app!.get(MessagingHealth).notReadyReason();

  /** What terminus answers: the result, or the body of its 503. */
  async function check(): Promise<{ status: string; info?: object; error?: object }> {
    try {
      return await app!.get(HealthCheckService).check([() => indicator().isHealthy()]);
    } catch (error) {
      if (!(error instanceof ServiceUnavailableException)) throw error;
      return error.getResponse() as { status: string; error: object };
    }
  }

  async function closeOwn(role: 'publisher' | 'consumer'): Promise<void> {
    const own = (await listConnections()).filter(({ name }) => name === `${serviceName}:${role}`);
    expect(own).toHaveLength(1);
    await rabbitmqctl('close_connection', own[0].pid, 'operations test: connection loss');
  }

  it('is up while connected and consuming', async () => {
    expect(await indicator().isHealthy()).toEqual({ messaging: { status: 'up', connected: true, inFlight: 0 } });
    expect(await indicator().isHealthy('broker')).toEqual({ broker: { status: 'up', connected: true, inFlight: 0 } });
    expect(await check()).toMatchObject({ status: 'ok', info: { messaging: { status: 'up' } } });
  });

  it.each(['consumer', 'publisher'] as const)('is down (reconnecting) while its %s connection comes back, then up again', async (role) => {
    // The reconnect starts at once and may take only milliseconds: every turn of the event loop is sampled.
    const seen: Array<string | undefined> = [];
    let sampling = true;
    const sample = () => {
      const now = reason();
      if (seen[seen.length - 1] !== now || seen.length === 0) seen.push(now);
      if (sampling) setImmediate(sample);
    };
    sample();
    const downBody = deferred<unknown>();
    const health = app!.get(MessagingHealth);
    const watch = (): void => {
      if (health.notReadyReason()) void check().then(downBody.resolve);
      else if (sampling) setImmediate(watch);
    };
    watch();
    await closeOwn(role);
    await waitFor(() => seen.length >= 3 && seen[seen.length - 1] === undefined, 'the instance to go down and come back', 15_000);
    sampling = false;
    expect(seen).toEqual([undefined, 'reconnecting', undefined]);
    expect(await downBody.promise).toMatchObject({
      status: 'error',
      error: { messaging: { status: 'down', reason: 'reconnecting' } },
    });
    expect(await check()).toMatchObject({ status: 'ok', info: { messaging: { status: 'up', connected: true } } });
  });

  it('is down (shutting down) from the first moment of shutdown, while handlers still drain', async () => {
    await app!.get(RpcClient).send(queue, { slow: true });
    await started.promise;
    expect(await check()).toMatchObject({ status: 'ok', info: { messaging: { status: 'up', inFlight: 1 } } });

    const closing = app!.close();
    await waitFor(() => reason() !== undefined, 'shutdown to start');
    expect(reason()).toBe('shutting down');
    expect(await indicator().isHealthy()).toEqual({ messaging: { status: 'down', reason: 'shutting down', connected: true, inFlight: 1 } });
    expect(app!.get(MessagingHealth).isReady()).toBe(false);

    release.resolve();
    await closing;
    expect(reason()).toBe('shutting down');
    app = undefined;
  });
});
