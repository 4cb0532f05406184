/**
 * What a reply carries: like every message the module sends, the request id of the message it
 * answers and `x-origin` naming the service that answered (API.md, tracking headers).
 */
import { Injectable } from '@nestjs/common';
import { MessageHandler } from '../../lib';
import { appModule, appsUnderTest } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';

describe('reply headers', () => {
  const apps = appsUnderTest();
  let broker: Broker;

  beforeAll(async () => {
    broker = await Broker.open();
  });
  afterAll(async () => {
    await broker.cleanup();
  });

  it('a reply to a named queue, result and error alike, carries x-origin and the request id it answers', async () => {
    const queue = broker.queue(unique('answers'));
    const replies = broker.queue(unique('replies'));
    await broker.channel.assertQueue(replies, { durable: true });

    @Injectable()
    class Answers {
      @MessageHandler({ queue })
      answer(body: { fail?: boolean }) {
        if (body.fail) throw new Error('no answer');
        return { ok: true };
      }
    }
    await apps.start(appModule({ serviceName: 'answering-service' }, { providers: [Answers] }));

    broker.publishRaw(queue, '{}', {
      contentType: 'application/json',
      replyTo: replies,
      correlationId: 'c-ok',
      headers: { 'x-request-id': 'req-ok' },
    });
    broker.publishRaw(queue, '{"fail":true}', {
      contentType: 'application/json',
      replyTo: replies,
      correlationId: 'c-err',
      headers: { 'x-request-id': 'req-err' },
    });

    const got: Awaited<ReturnType<Broker['drainQueue']>> = [];
    await waitFor(async () => (got.push(...(await broker.drainQueue(replies))), got.length >= 2), 'two replies');
    const byCorrelation = Object.fromEntries(got.map((m) => [m.properties.correlationId, m.properties.headers ?? {}]));
    expect(byCorrelation['c-ok']).toMatchObject({ 'x-origin': 'answering-service', 'x-request-id': 'req-ok' });
    expect(byCorrelation['c-err']).toMatchObject({ 'x-origin': 'answering-service', 'x-request-id': 'req-err' });
  });
});
