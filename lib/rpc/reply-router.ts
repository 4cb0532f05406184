import type { CodecRegistry } from '../codec/codec-registry';
import type { Logger } from '@nestjs/common';
import { own } from '../util/own-headers';
import { DIRECT_REPLY_TO, HEADER_ERROR_MESSAGE, HEADER_ERROR_NAME, HEADER_ERROR_STATUS, HEADER_REPLY_ERROR } from '../messaging.constants';
import { isHttpStatus } from '../util/error-status';
import { ConnectionLostError, ExchangeNotFoundError, MessagingError, RpcRemoteError, UnroutableError } from '../messaging.errors';
import type { ManagedConnection } from '../connection/managed-connection';
import type { Outgoing, Publisher, Settle } from '../publisher/publisher';
import { within } from '../util/within';
import { isNotFound } from '../transport/transport.errors';
import type { Message, TransportChannel } from '../transport/transport.interface';

/** A caller waiting for replies: one (request) or many (gather); it deletes itself when complete. */
export interface PendingCall {
  onReply(value: unknown, error?: RpcRemoteError): void;
  /** The broker returned the request: no queue could take it. */
  onUnroutable(error: UnroutableError): void;
  /** The call cannot complete (connection lost, shutdown). */
  onFail(error: Error): void;
}

/**
 * Requests go out on a channel of their own, which also consumes their replies over RabbitMQ
 * direct reply-to (RabbitMQ requires both on one channel; the consumer starts on each new channel
 * before anything is published there) and carries the direct replies this app's handlers send.
 * It has no confirms: the reply is the proof of delivery, and a returned request fails its caller
 * at once. Keeping it apart from send()/publish() means a publish to a missing exchange, which
 * closes its channel, cannot fail the requests waiting here. Each reply reaches its caller through
 * one Map lookup; replies nobody waits for (late, unknown, duplicate) are counted and dropped.
 */
export class ReplyRouter {
  private readonly pending = new Map<string, PendingCall>();
  private readonly exchangeLookUps = new Map<string, Promise<void>>();
  private dropped = 0;

  constructor(
    private readonly requests: Publisher,
    private readonly connection: ManagedConnection,
    private readonly codecs: CodecRegistry,
    private readonly logger: Logger,
  ) {
    requests.on('channel', (channel: TransportChannel) => this.listen(channel));
    requests.on('return', (message: Message) => this.returned(message));
    // Replies for calls published on a channel that is gone can never arrive.
    requests.on('channel-lost', (reason: string) =>
      this.failAll(() => new ConnectionLostError(`The reply channel was lost before the reply arrived: ${reason}`)),
    );
  }

  /** Publishes a request, or a direct reply, on the RPC channel. */
  submit(message: Outgoing, timeoutMs: number, settle: Settle): void {
    this.requests.submit(message, timeoutMs, settle);
  }

  /**
   * Checks that an exchange exists (on a throwaway channel), so a scatter-gather to a missing
   * exchange fails alone instead of closing the channel every request waits on. Nothing is
   * remembered past one look-up (an exchange may be deleted at any time); gathers that overlap
   * share it. Resolves false when the broker has not answered within `timeoutMs`; rejects with
   * ExchangeNotFoundError when it does not exist.
   */
  async ensureExchange(exchange: string, timeoutMs: number): Promise<boolean> {
    if (exchange === '') return true;
    let lookUp = this.exchangeLookUps.get(exchange);
    if (!lookUp) {
      lookUp = this.lookUpExchange(exchange).finally(() => this.exchangeLookUps.delete(exchange));
      this.exchangeLookUps.set(exchange, lookUp);
    }
    return (
      (await within(
        lookUp.then(() => true),
        timeoutMs,
      )) ?? false
    );
  }

  private async lookUpExchange(exchange: string): Promise<void> {
    try {
      await this.connection.withChannel((channel) => channel.checkExchange(exchange));
    } catch (error) {
      if (isNotFound(error)) throw new ExchangeNotFoundError(exchange, error.reason);
      throw new MessagingError(`Cannot check exchange "${exchange}": ${(error as Error).message}`, { cause: error });
    }
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

  private returned(message: Message): void {
    const call = this.pending.get(message.properties.correlationId as string);
    call?.onUnroutable(new UnroutableError(message.fields.exchange, message.fields.routingKey));
  }

  private listen(channel: TransportChannel): void {
    channel
      .consume(DIRECT_REPLY_TO, (msg) => msg && this.route(msg), { noAck: true })
      .catch((error: Error) => this.logger.error(`Cannot consume replies: ${error.message}`));
  }

  private route(msg: Message): void {
    const id = msg.properties.correlationId as string | undefined;
    const call = id === undefined ? undefined : this.pending.get(id);
    if (!call) {
      this.dropped++;
      return;
    }
    const headers = msg.properties.headers ?? {};
    if (own(headers, HEADER_REPLY_ERROR)) {
      return call.onReply(
        undefined,
        new RpcRemoteError(
          String(own(headers, HEADER_ERROR_NAME) ?? 'Error'),
          String(own(headers, HEADER_ERROR_MESSAGE) ?? ''),
          statusHeader(own(headers, HEADER_ERROR_STATUS)),
        ),
      );
    }
    let value: unknown;
    try {
      value = this.codecs.decode(msg.content, msg.properties.contentType, msg.properties.contentEncoding);
    } catch (error) {
      return call.onReply(undefined, undecodable(error));
    }
    if (!(value instanceof Promise)) return call.onReply(value);
    // Inflated off the event loop: the call may have ended (timeout, abort) meanwhile.
    value.then(
      (payload) => this.pending.get(id!) === call && call.onReply(payload),
      (error: unknown) => this.pending.get(id!) === call && call.onReply(undefined, undecodable(error)),
    );
  }
}

function undecodable(error: unknown): RpcRemoteError {
  return new RpcRemoteError('DecodeError', (error as Error).message);
}

/** A reply's `x-error-status`: another service wrote it, so only a real HTTP status is taken. */
function statusHeader(value: unknown): number | undefined {
  return isHttpStatus(value) ? value : undefined;
}
