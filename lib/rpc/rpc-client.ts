import type { Telemetry } from '../telemetry/telemetry.interface';
import { Inject, Injectable } from '@nestjs/common';
import { TrackContext } from '../context/track-context';
import type { GatherOptions, RequestOptions, SendOptions } from '../interfaces/send-options.interface';
import { DIRECT_REPLY_TO, MESSAGING_OPTIONS, TELEMETRY } from '../messaging.constants';
import { ExchangeNotFoundError, InvalidArgumentError, MessagingError, UnroutableError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { Publisher, type PublishProperties } from '../publisher/publisher';
import { type CallOutcome, NestReply, OneReply, Replies, WaitingCall } from './pending-call';
import { ReplyRouter } from './reply-router';
import { DelayQueues } from '../topology/delay-queues';
import { renamed } from '../messaging.options';
import { checkDuration, checkNestOptions, checkSendOptions, eventBody, sendProperties } from './send-properties';
import { nestPacket } from '../codec/nest-rmq-wire';

/**
 * The one way to send: commands (send), events (publish), request/response (request), async
 * request/response (send with replyTo) and scatter-gather (gather). Everything sent carries the
 * TrackContext of the code that sends it.
 */
@Injectable()
export class RpcClient {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly publisher: Publisher,
    private readonly router: ReplyRouter,
    private readonly track: TrackContext,
    private readonly delays: DelayQueues,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(TELEMETRY) private readonly telemetry: Telemetry,
  ) {}

  /** Requests waiting for replies; 0 when idle (for tests and metrics). */
  get pendingRequests(): number {
    return this.router.size;
  }

  /** Replies that arrived for nobody (late, unknown or duplicate correlation id). */
  get droppedReplies(): number {
    return this.router.droppedReplies;
  }

  /** A one-way command to a queue; resolves with the message id once the broker confirmed it. */
  send(queue: string, payload: unknown, options: SendOptions = {}): Promise<string> {
    // Not `async`: the publisher's promise is returned as it is, without a second one wrapping it
    // (a promise and three microtask turns per message on the hottest path); errors still reject.
    try {
      checkSendOptions(options);
      payload = eventBody(payload, options);
      const target = renamed(this.options.queues, queue);
      const mandatory = options.mandatory ?? true;
      if (options.delayMs !== undefined) return this.sendDelayed(target, payload, options, mandatory);
      const properties = this.properties(options, mandatory);
      return this.publisher.publish({ exchange: '', routingKey: target, payload, properties }, options.timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * An event to an exchange: every bound queue gets a copy; resolves with the message id on
   * confirm, also when no queue is bound (events may have no subscriber yet) unless `mandatory`.
   */
  publish(exchange: string, routingKey: string, payload: unknown, options: SendOptions = {}): Promise<string> {
    // Not `async`, for the reason given at send().
    try {
      checkSendOptions(options);
      payload = eventBody(payload, options);
      const target = renamed(this.options.exchanges, exchange);
      if (options.delayMs !== undefined) return this.publishDelayed(target, routingKey, payload, options);
      const properties = this.properties(options, options.mandatory ?? false);
      return this.publisher.publish({ exchange: target, routingKey, payload, properties }, options.timeoutMs);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * The target queue must exist now: whether it does when the delay ends is not known now. Every
   * step (the check, the delay queue's declaration, the publish) spends the send's one timeout.
   */
  private async sendDelayed(target: string, payload: unknown, options: SendOptions, mandatory: boolean): Promise<string> {
    const deadline = Date.now() + (options.timeoutMs ?? this.options.publishTimeoutMs);
    if (mandatory && !(await this.delays.queueExists(target, deadline))) throw new UnroutableError('', target);
    return this.publishDelayed('', target, payload, options, deadline);
  }

  /**
   * Through the delay queue of (exchange, delay), which hands the message to `exchange` with its
   * routing key when the delay is over; whether something is bound then is not known now. The
   * publish is mandatory, so a delay queue deleted since its declaration fails it rather than
   * swallowing it: declared again, and published once more.
   */
  private async publishDelayed(
    exchange: string,
    routingKey: string,
    payload: unknown,
    options: SendOptions,
    deadline = Date.now() + (options.timeoutMs ?? this.options.publishTimeoutMs),
  ): Promise<string> {
    const delayMs = options.delayMs!;
    const properties = this.properties(options, true);
    const publish = async () =>
      this.publisher.publish(
        { exchange: await this.delays.via(exchange, delayMs, deadline), routingKey, payload, properties },
        Math.max(1, deadline - Date.now()),
      );
    try {
      return await publish();
    } catch (error) {
      // Its delay exchange (404) or queue (returned) went since it was declared.
      if (!(error instanceof ExchangeNotFoundError || error instanceof UnroutableError)) throw error;
      this.delays.forget(exchange, delayMs);
    }
    return publish().catch((error: unknown) => {
      throw error instanceof UnroutableError ? this.delays.lost(error.exchange) : error;
    });
  }

  /** Sends to a queue and waits for the handler's result. */
  request<T = unknown>(queue: string, payload: unknown, options: RequestOptions = {}): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      checkNestOptions(options);
      checkDuration('timeoutMs', options.timeoutMs);
      const timeoutMs = options.timeoutMs ?? this.options.rpcTimeoutMs;
      const target = renamed(this.options.queues, queue);
      this.call(
        target,
        '',
        target,
        payload,
        timeoutMs,
        options,
        new OneReply(resolve as (value: unknown) => void, reject, target, timeoutMs),
      );
    });
  }

  /** Publishes once and collects every reply until `expect` arrived or the timeout; never rejects on timeout. */
  async gather<T = unknown>(name: string, routingKey: string, payload: unknown, options: GatherOptions = {}): Promise<T[]> {
    const exchange = renamed(this.options.exchanges, name);
    if (options.format !== undefined || options.pattern !== undefined) {
      throw new InvalidArgumentError('format', "left out: gather() collects the replies of this module's handlers", options.format);
    }
    checkDuration('timeoutMs', options.timeoutMs);
    if (options.expect !== undefined && !(Number.isSafeInteger(options.expect) && options.expect >= 0)) {
      throw new InvalidArgumentError(
        'expect',
        'a whole number of replies, 0 or more (leave it out to collect until the timeout)',
        options.expect,
      );
    }
    const expect = options.expect ?? Infinity;
    if (expect <= 0) return [];
    const timeoutMs = options.timeoutMs ?? this.options.rpcTimeoutMs;
    const deadline = Date.now() + timeoutMs;
    // The look-up spends the gather's own time: a broker that cannot answer it in time could not
    // bring the replies in time either, and the gather resolves with none, as on any timeout.
    if (!(await this.router.ensureExchange(exchange, timeoutMs))) return [];
    const remainingMs = deadline - Date.now();
    if (remainingMs <= 0) return [];
    return new Promise<T[]>((resolve, reject) =>
      this.call(exchange, exchange, routingKey, payload, remainingMs, options, new Replies(resolve, reject, expect)),
    );
  }

  /** Registers a waiting call, publishes its request, and wires timeout, abort and returns. */
  private call(
    target: string,
    exchange: string,
    routingKey: string,
    payload: unknown,
    timeoutMs: number,
    options: RequestOptions,
    outcome: CallOutcome,
  ): void {
    const sent = this.properties({ headers: options.headers, persistent: false }, true);
    // The request's own fresh id names its reply too: one id made per call, not two.
    const correlationId = sent.messageId;
    if (options.format === 'nest-rmq') {
      // Nest's packet carries the call's id, which its server answers with as the correlation id.
      payload = nestPacket(options.pattern!, payload, correlationId);
      outcome = new NestReply(outcome);
    }
    const call = new WaitingCall(this.router, this.telemetry, correlationId, target, timeoutMs, options.signal, outcome);
    if (options.signal?.aborted) return call.handleEvent();
    const properties: PublishProperties = {
      ...sent,
      correlationId,
      replyTo: DIRECT_REPLY_TO,
      // A request nobody took in time must not run later.
      expiration: String(timeoutMs),
    };
    this.router.submit({ exchange, routingKey, payload, properties }, timeoutMs, (error) => {
      if (error)
        call.onFail(
          error instanceof MessagingError ? error : new MessagingError(`Request to "${target}" failed: ${error.message}`, { cause: error }),
        );
    });
  }

  private properties(options: SendOptions, mandatory: boolean): PublishProperties {
    return sendProperties(options, mandatory, this.track, this.options);
  }
}
