import type { Logger } from '@nestjs/common';
import type * as amqp from 'amqplib';
import { decode } from '../codec/json.codec';
import { own } from '../context/track-store';
import { DIRECT_REPLY_TO, HEADER_ERROR_MESSAGE, HEADER_ERROR_NAME, HEADER_REPLY_ERROR } from '../messaging.constants';
import { ConnectionLostError, RpcRemoteError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Publisher } from '../publisher/publisher';

/** A caller waiting for replies: one (request) or many (gather); it deletes itself when complete. */
export interface PendingCall {
  onReply(value: unknown, error?: RpcRemoteError): void;
  /** The call cannot complete (connection lost, shutdown). */
  onFail(error: Error): void;
}

/**
 * Receives every reply over RabbitMQ direct reply-to on the publish channel (the consumer is
 * started on each new channel before anything is published there) and hands it to the waiting
 * caller through one Map lookup. Replies nobody waits for (late, unknown, duplicate) are counted
 * and dropped.
 */
export class ReplyRouter {
  private readonly pending = new Map<string, PendingCall>();
  private dropped = 0;

  constructor(
    publisher: Publisher,
    private readonly options: ResolvedMessagingOptions,
    private readonly logger: Logger,
  ) {
    if (publisher.channel) this.listen(publisher.channel);
    publisher.on('channel', (channel: amqp.ConfirmChannel) => this.listen(channel));
    // Replies for calls published on a channel that is gone can never arrive.
    publisher.on('channel-lost', (reason: string) =>
      this.failAll(() => new ConnectionLostError(`The reply channel was lost before the reply arrived: ${reason}`)),
    );
  }

  get size(): number {
    return this.pending.size;
  }

  get droppedReplies(): number {
    return this.dropped;
  }

  add(correlationId: string, call: PendingCall): void {
    this.pending.set(correlationId, call);
  }

  /** Forgets a call (it timed out or was aborted); a reply for it is dropped from now on. */
  delete(correlationId: string): void {
    this.pending.delete(correlationId);
  }

  /** Fails every waiting call, e.g. when the channel that would bring their replies is gone. */
  failAll(error: () => Error): void {
    const calls = [...this.pending.values()];
    this.pending.clear();
    for (const call of calls) call.onFail(error());
  }

  private listen(channel: amqp.ConfirmChannel): void {
    channel
      .consume(DIRECT_REPLY_TO, (msg) => msg && this.route(msg), { noAck: true })
      .catch((error: Error) => this.logger.error(`Cannot consume replies: ${error.message}`));
  }

  private route(msg: amqp.ConsumeMessage): void {
    const id = msg.properties.correlationId as string | undefined;
    const call = id === undefined ? undefined : this.pending.get(id);
    if (!call) {
      this.dropped++;
      return;
    }
    const headers = msg.properties.headers ?? {};
    let value: unknown;
    let error: RpcRemoteError | undefined;
    if (own(headers, HEADER_REPLY_ERROR)) {
      error = new RpcRemoteError(String(own(headers, HEADER_ERROR_NAME) ?? 'Error'), String(own(headers, HEADER_ERROR_MESSAGE) ?? ''));
    } else {
      try {
        value = decode(msg.content, msg.properties.contentType, this.options.maxMessageBytes);
      } catch (decodeError) {
        error = new RpcRemoteError('DecodeError', (decodeError as Error).message);
      }
    }
    call.onReply(value, error);
  }
}
