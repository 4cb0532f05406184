import { EventEmitter } from 'node:events';
import type * as amqp from 'amqplib';
import { IllegalOperationError } from 'amqplib';
import { ChannelClosedError } from '../transport.errors';
import type {
  ConfirmOutcome,
  DeleteQueueOptions,
  ExchangeKind,
  ExchangeOptions,
  Message,
  PublishProperties,
  QueueInfo,
  QueueOptions,
  TransportChannel,
} from '../transport.interface';
import { closedByBroker, operationError } from './channel-errors';
import { writeMessage } from './wire';

/** An amqplib channel as a TransportChannel: the same calls, with typed errors and confirm outcomes. */
export class AmqpChannel extends EventEmitter implements TransportChannel {
  private closeError?: ChannelClosedError;
  /** amqplib is failing the channel's pending confirms: an error now means the channel went, not a nack. */
  private closing = false;

  constructor(private readonly channel: amqp.Channel) {
    super();
    // Without a listener amqplib would throw a channel error out of the connection's frame loop
    // and take every other channel down with it.
    channel.on('error', (error: Error) => (this.closeError = closedByBroker(error)));
    // amqplib fails pending confirms in its own `close` listener, registered when the channel was
    // made; this one, put before it, tells those failures from nacks...
    channel.prependListener('close', () => (this.closing = true));
    // ...and this one, after it, announces the close once every confirm has been answered.
    channel.on('close', () => this.emit('close', this.closeError));
    channel.on('return', (message: Message) => this.emit('return', message));
    channel.on('drain', () => this.emit('drain'));
  }

  publish<T>(
    exchange: string,
    routingKey: string,
    content: Buffer,
    properties: PublishProperties,
    onConfirm?: (token: T, outcome: ConfirmOutcome) => void,
    token?: T,
  ): boolean {
    try {
      return writeMessage(
        this.channel,
        exchange,
        routingKey,
        content,
        properties,
        onConfirm && ((error) => onConfirm(token as T, error === null ? 'ack' : this.closing ? 'closed' : 'nack')),
      );
    } catch (error) {
      // The channel is closing; its close event has not reached us yet.
      if (error instanceof IllegalOperationError) throw new ChannelClosedError(error.message, undefined, undefined, { cause: error });
      throw error;
    }
  }

  assertExchange(name: string, kind: ExchangeKind, options?: ExchangeOptions): Promise<void> {
    return this.op(() => this.channel.assertExchange(name, kind, options)).then(() => undefined);
  }

  assertQueue(name: string, options?: QueueOptions): Promise<QueueInfo> {
    return this.op(() => this.channel.assertQueue(name, options));
  }

  bindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void> {
    return this.op(() => this.channel.bindQueue(queue, exchange, routingKey, args)).then(() => undefined);
  }

  unbindQueue(queue: string, exchange: string, routingKey: string, args?: Record<string, unknown>): Promise<void> {
    return this.op(() => this.channel.unbindQueue(queue, exchange, routingKey, args)).then(() => undefined);
  }

  checkQueue(name: string): Promise<QueueInfo> {
    return this.op(() => this.channel.checkQueue(name));
  }

  checkExchange(name: string): Promise<void> {
    return this.op(() => this.channel.checkExchange(name)).then(() => undefined);
  }

  deleteQueue(name: string, options?: DeleteQueueOptions): Promise<{ messageCount: number }> {
    return this.op(() => this.channel.deleteQueue(name, options));
  }

  deleteExchange(name: string): Promise<void> {
    return this.op(() => this.channel.deleteExchange(name)).then(() => undefined);
  }

  purgeQueue(name: string): Promise<{ messageCount: number }> {
    return this.op(() => this.channel.purgeQueue(name));
  }

  prefetch(count: number): Promise<void> {
    return this.op(() => this.channel.prefetch(count)).then(() => undefined);
  }

  consume(
    queue: string,
    onMessage: (message: Message | null) => void,
    options?: { noAck?: boolean; exclusive?: boolean; consumerTag?: string },
  ): Promise<{ consumerTag: string }> {
    return this.op(() => this.channel.consume(queue, onMessage, options));
  }

  cancel(consumerTag: string): Promise<void> {
    return this.op(() => this.channel.cancel(consumerTag)).then(() => undefined);
  }

  get(queue: string, options?: { noAck?: boolean }): Promise<Message | false> {
    return this.op(() => this.channel.get(queue, options) as Promise<Message | false>);
  }

  ack(message: Message, allUpTo?: boolean): void {
    try {
      this.channel.ack(message, allUpTo);
    } catch (error) {
      throw operationError(error);
    }
  }

  nack(message: Message, allUpTo?: boolean, requeue?: boolean): void {
    try {
      this.channel.nack(message, allUpTo, requeue);
    } catch (error) {
      throw operationError(error);
    }
  }

  close(): Promise<void> {
    return this.op(() => this.channel.close());
  }

  private async op<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      throw operationError(error);
    }
  }
}
