import { errorStatus } from '../util/error-status';
import { nestReply } from '../codec/nest-rmq-wire';
import type { MessageFormat } from '../topology/handler-definition';
import { randomUUID } from 'node:crypto';
import type { TrackContext } from '../context/track-context';
import {
  DIRECT_REPLY_TO,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ERROR_STATUS,
  HEADER_ORIGIN,
  HEADER_REPLY_ERROR,
  MAX_ERROR_MESSAGE_LENGTH,
} from '../messaging.constants';
import { EncodeError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { Publisher } from '../publisher/publisher';
import type { ReplyRouter } from '../rpc/reply-router';
import type { Delivery } from './delivery';

/**
 * Answers a request (a delivery with `replyTo`) with its handler's result or error: to a named
 * queue through the confirmed publisher (mandatory: a missing queue rejects), to direct reply-to
 * on the RPC channel.
 */
export class DeliveryReplies {
  constructor(
    private readonly publisher: Publisher,
    private readonly rpc: ReplyRouter,
    private readonly track: TrackContext,
    private readonly options: Pick<ResolvedMessagingOptions, 'persistent' | 'publishTimeoutMs' | 'serviceName'>,
    /** `nest-rmq`: the reply a Nest ClientRMQ reads, `{ response | err, isDisposed }`. */
    private readonly format: MessageFormat,
    /** A direct reply that could not be sent: the caller times out; the outcome goes on. */
    private readonly onDirectFailure: (delivery: Delivery, replyTo: string, failure: Error) => void,
  ) {}

  private body(result: unknown, failure?: ErrorReply): unknown {
    const said = failure && { name: failure.name, message: failure.message };
    return this.format === 'nest-rmq' ? nestReply(result, said) : (said ?? result);
  }

  /** Whether the request asks for its answer on direct reply-to (no queue, no confirm). */
  isDirect(delivery: Delivery): boolean {
    return (delivery.msg.properties.replyTo as string).startsWith(DIRECT_REPLY_TO);
  }

  async send(delivery: Delivery, result: unknown, error?: Error): Promise<void> {
    if (this.isDirect(delivery)) return this.sendDirect(delivery, result, error);
    try {
      await this.publisher.publish(this.reply(delivery, result, error, false));
    } catch (failure) {
      if (!unanswerable(failure, error)) throw failure;
      await this.send(delivery, undefined, failure);
    }
  }

  /**
   * On the RPC channel, without confirm, in the caller's tick: the caller waits with its own
   * timeout, and nothing is gained by holding the ack for a confirm (nor by a promise per reply).
   */
  sendDirect(delivery: Delivery, result: unknown, error?: Error): void {
    const message = this.reply(delivery, result, error, true);
    this.rpc.submit(message, this.options.publishTimeoutMs, (failure) => {
      if (!failure) return;
      if (unanswerable(failure, error)) this.sendDirect(delivery, undefined, failure);
      else this.onDirectFailure(delivery, message.routingKey, failure);
    });
  }

  private reply(delivery: Delivery, result: unknown, error: Error | undefined, direct: boolean) {
    const { properties } = delivery.msg;
    const failure = error && errorReply(error);
    const headers = this.track.addHeaders({
      [HEADER_ORIGIN]: this.options.serviceName,
      ...(failure ? errorHeaders(failure) : {}),
    });
    return {
      exchange: '',
      routingKey: properties.replyTo as string,
      payload: this.body(result, failure),
      properties: {
        messageId: randomUUID(),
        correlationId: properties.correlationId ?? properties.messageId,
        persistent: !direct && this.options.persistent,
        mandatory: !direct,
        headers,
      },
    };
  }
}

/**
 * A result that cannot be encoded (no codec, too large) can never be sent, however often the
 * outcome is carried out again: the caller gets that error instead. An error reply always encodes.
 */
function unanswerable(failure: unknown, error: Error | undefined): failure is EncodeError {
  return failure instanceof EncodeError && error === undefined;
}

/** What an error reply says of its error. */
interface ErrorReply {
  name: string;
  message: string;
  status?: number;
}

/**
 * The handler's error as its reply tells it, read once. An error of the app's own may throw when
 * read (a getter, a `getStatus()` reading what is not there): the caller is then told that, rather
 * than the reply failing, which would leave the request unanswered and its outcome tried forever.
 */
function errorReply(error: Error): ErrorReply {
  try {
    return { name: String(error.name), message: truncate(String(error.message)), status: errorStatus(error) };
  } catch {
    return { name: 'Error', message: 'The handler failed with an error whose name, message or status cannot be read' };
  }
}

/** What an error reply's headers say of its error: name, message and, when it has one, its HTTP status. */
function errorHeaders(error: ErrorReply): Record<string, unknown> {
  return {
    [HEADER_REPLY_ERROR]: true,
    [HEADER_ERROR_NAME]: error.name,
    [HEADER_ERROR_MESSAGE]: error.message,
    ...(error.status === undefined ? {} : { [HEADER_ERROR_STATUS]: error.status }),
  };
}

/** An error message as headers and replies carry it: at most MAX_ERROR_MESSAGE_LENGTH characters. */
export function truncate(text: string): string {
  return text.length > MAX_ERROR_MESSAGE_LENGTH ? text.slice(0, MAX_ERROR_MESSAGE_LENGTH) : text;
}
