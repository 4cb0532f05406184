import { ConsoleLogger, Injectable, type LoggerService } from '@nestjs/common';
import { MessageHandler } from '../../lib';
import { appModule } from '../support/app';
import { Broker, unique, waitFor } from '../support/broker';
import { NestFactory } from '@nestjs/core';

/**
 * The module's log lines about a message carry its queue, message id and request id as fields
 * (what nestjs-pino and similar loggers merge into the record), and still read as one line of
 * text in Nest's console logger.
 */
describe('log lines about a message', () => {
  const queue = unique('logs');
  let broker: Broker;

  @Injectable()
  class Failing {
    @MessageHandler({ queue, retry: false })
    handle(): void {
      throw new Error('no stock');
    }
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
  });

  afterAll(async () => {
    await broker.cleanup();
  });

  it('pass an object with queue, messageId and requestId that prints as the old text line', async () => {
    const logger = new RawLogger();
    const app = await NestFactory.createApplicationContext(appModule({ serviceName: unique('svc-logs') }, { providers: [Failing] }), {
      logger,
      abortOnError: false,
    });
    await app.init();
    try {
      // As another service sends it: with its own request id.
      const messageId = unique('msg');
      broker.publishRaw(queue, '{}', { messageId, contentType: 'application/json', headers: { 'x-request-id': 'req-logs-1' } });
      const find = () => logger.errors.find((message) => (message as { messageId?: string } | null)?.messageId === messageId);
      await waitFor(() => find() !== undefined, 'the dead-letter line');
      const line = find();
      expect({ ...(line as object) }).toEqual({
        msg: `Failing.handle message ${messageId} failed on try 1 (Error: no stock); moved to ${queue}.dlq`,
        queue,
        messageId,
        requestId: 'req-logs-1',
        handler: 'Failing.handle',
      });
      // Nest's console logger prints it as text, request id first.
      const printed = new ConsoleLogger('Messaging', { colors: false })['stringifyMessage'](line, 'error') as string;
      expect(printed).toBe(`[req-logs-1] Failing.handle message ${messageId} failed on try 1 (Error: no stock); moved to ${queue}.dlq`);
      // ...and its JSON mode gives the fields.
      expect(JSON.parse(JSON.stringify(line))).toMatchObject({ queue, messageId, requestId: 'req-logs-1' });
    } finally {
      await app.close();
    }
  });
});

/** Keeps what Nest's Logger hands over for errors, as it is (a structured logger sees the same). */
class RawLogger implements LoggerService {
  readonly errors: unknown[] = [];
  log(): void {}
  warn(): void {}
  error(message: unknown): void {
    this.errors.push(message);
  }
}
