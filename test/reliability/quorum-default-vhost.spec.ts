import { Injectable, type INestApplicationContext } from '@nestjs/common';
import { MessageHandler, RpcClient, type MessageContext } from '../../lib';
import { appModule } from '../support/app';
import { CaptureLogger } from '../support/capture-logger';
import { startAppLogged } from './helpers';
import { AMQP_URL, rabbitmqctl, unique, waitFor } from '../support/broker';

/**
 * A vhost whose default queue type is quorum (`rabbitmqctl add_vhost v --default-queue-type
 * quorum`, what Amazon MQ 4.2 does): a declare that names no type gets a quorum queue. Everything
 * the module declares must still work there: a queue that must be classic (a broadcast handler's
 * exclusive queue) is classic, every other one works as quorum; a handler queue that became
 * quorum that way, without the module's dead-letter target, is told about once.
 */
describe('a vhost whose default queue type is quorum', () => {
  const vhost = unique('vhost-quorum');
  let app: INestApplicationContext | undefined;
  let supported = true;

  beforeAll(async () => {
    try {
      await rabbitmqctl('add_vhost', vhost, '--default-queue-type', 'quorum');
    } catch {
      supported = false; // RabbitMQ before 3.11 has no default queue type
      return;
    }
    await rabbitmqctl('set_permissions', '-p', vhost, 'guest', '.*', '.*', '.*');
  });

  afterAll(async () => {
    await app?.close();
    if (supported) await rabbitmqctl('delete_vhost', vhost);
  });

  it('commands with retries, a broadcast, a request, a delayed send and ad-hoc retries all arrive; the queues that must be classic are', async (context) => {
    if (!supported) context.skip('this RabbitMQ has no --default-queue-type (3.11 and later have)');
    const seen: string[] = [];
    let failOnce = true;
    @Injectable()
    class Handlers {
      @MessageHandler({ queue: 'work', retry: { attempts: 3, delaysMs: [50] } })
      work(body: { n: number }, ctx: MessageContext) {
        if (body.n === 2 && failOnce) {
          failOnce = false;
          throw new Error('first try fails');
        }
        seen.push(`work ${body.n} try ${ctx.attempt}`);
      }

      @MessageHandler({ queue: 'later', retry: false })
      async later(body: { n: number }, ctx: MessageContext) {
        if (ctx.attempt === 1) return ctx.retry({ delayMs: 70 });
        seen.push(`later ${body.n} try ${ctx.attempt}`);
      }

      @MessageHandler({ exchange: 'news', exchangeType: 'fanout', broadcast: true })
      news(body: string) {
        seen.push(`news ${body}`);
      }

      @MessageHandler({ queue: 'ask' })
      ask(n: number) {
        return n + 1;
      }

      @MessageHandler({ queue: 'typed', queueType: 'quorum' })
      async typed(body: string, ctx: MessageContext) {
        if (ctx.attempt === 1) return ctx.retry({ delayMs: 90 });
        seen.push(`typed ${body} try ${ctx.attempt}`);
      }
    }
    const uri = `${AMQP_URL}/${encodeURIComponent(vhost)}`;
    const logger = new CaptureLogger();
    app = await startAppLogged(appModule({ uri, serviceName: 'quorum-default' }, { providers: [Handlers] }), logger);
    const rpc = app.get(RpcClient);
    await rpc.send('work', { n: 1 });
    await rpc.send('work', { n: 2 });
    await rpc.send('work', { n: 3 }, { delayMs: 60 });
    await rpc.send('later', { n: 4 });
    await rpc.publish('news', '', 'hello');
    await rpc.send('typed', 'named');
    await expect(rpc.request('ask', 41)).resolves.toBe(42);
    await waitFor(() => seen.length === 6, 'every message', 15_000);
    expect(seen.sort()).toEqual(
      ['later 4 try 2', 'news hello', 'typed named try 2', 'work 1 try 1', 'work 2 try 2', 'work 3 try 1'].sort(),
    );
    // Quorum by the vhost's default, so without the dead-letter target of the module's quorum
    // queues: each told once, with the fix. The handler that names quorum gets its target.
    const told = logger.matching(/is a quorum queue \(its vhost's default queue type\)/);
    expect(told.map((line) => /queue "([^"]+)"/.exec(line)?.[1]).sort()).toEqual(['ask', 'later', 'work']);
    expect(told[0]).toContain(`Set "queueType: 'quorum'"`);
    expect(logger.matching(/queue "typed"/)).toEqual([]);

    const queues = (await rabbitmqctl('list_queues', '-p', vhost, 'name', 'type', 'exclusive'))
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('\t'));
    const typeOf = new Map(queues.map(([name, type]) => [name, type]));
    expect(typeOf.get('work')).toBe('quorum');
    expect(typeOf.get('typed')).toBe('quorum');
    // Queues that expire are classic whatever the vhost's default or the handler's type: a declare
    // does not renew a quorum queue's x-expires (see broker-semantics.spec.ts).
    expect(typeOf.get('typed.retry.90ms.adhoc')).toBe('classic');
    expect(typeOf.get('later.retry.70ms.adhoc')).toBe('classic');
    expect(typeOf.get('messaging.delayed.60ms.(default)')).toBe('classic');
    expect(typeOf.get('work.dlq')).toBe('quorum');
    expect(typeOf.get('work.retry.50ms')).toBe('quorum');
    const broadcast = queues.filter(([, , exclusive]) => exclusive === 'true');
    expect(broadcast).toHaveLength(1);
    expect(broadcast[0][1]).toBe('classic');
  });
});
