import { STATUS_CODES } from 'node:http';
import {
  BrokerUnreachableError,
  ConnectionLostError,
  ExchangeNotFoundError,
  MessagingError,
  PublishNackedError,
  PublishRefusedError,
  PublishTimeoutError,
  QueueNotFoundError,
  RpcAbortedError,
  RpcRemoteError,
  RpcTimeoutError,
  ShuttingDownError,
  UnroutableError,
} from '../messaging.errors';

/** How a messaging error answers an HTTP request: its status, and whether its message may be shown. */
export interface HttpAnswer {
  status: number;
  /** False: the message says something about this service's internals, not the caller's request. */
  expose: boolean;
}

/**
 * The HTTP answer to a messaging error thrown while handling a request; undefined for an error that
 * is no messaging error (Nest's own filter answers it). The messaging system is the upstream:
 * - it took too long: 504 Gateway Timeout (`RpcTimeoutError`);
 * - it answered with an error: that error's own HTTP status when it had one (a 4xx of the remote
 *   handler is the caller's fault there as here), 502 Bad Gateway otherwise;
 * - it is not there now (no connection, no queue or exchange, a refusal, shutting down): 503;
 * - anything else (a bad argument, a payload that does not encode): this service's bug, 500.
 */
export function httpAnswerOf(error: unknown): HttpAnswer | undefined {
  if (!(error instanceof MessagingError)) return undefined;
  if (error instanceof RpcTimeoutError) return { status: 504, expose: true };
  if (error instanceof RpcRemoteError) {
    return error.status !== undefined && error.status < 500 ? { status: error.status, expose: true } : { status: 502, expose: false };
  }
  if (UNAVAILABLE.some((type) => error instanceof type)) return { status: 503, expose: false };
  return { status: 500, expose: false };
}

/** The body of an HTTP answer to a messaging error, shaped like Nest's own; its message shown only when `expose`. */
export interface HttpAnswerBody {
  statusCode: number;
  /** Undefined, like `error`, for a status without a standard name (e.g. a remote handler's 499). */
  message: string | undefined;
  error: string | undefined;
}

/** httpAnswerOf as the body to send; undefined for an error that is no messaging error. */
export function httpAnswerBody(error: unknown): HttpAnswerBody | undefined {
  const answer = httpAnswerOf(error);
  if (answer === undefined) return undefined;
  const reason = STATUS_CODES[answer.status];
  return { statusCode: answer.status, message: answer.expose ? (error as Error).message : reason, error: reason };
}

const UNAVAILABLE = [
  BrokerUnreachableError,
  ConnectionLostError,
  ShuttingDownError,
  UnroutableError,
  ExchangeNotFoundError,
  QueueNotFoundError,
  PublishTimeoutError,
  PublishNackedError,
  PublishRefusedError,
  RpcAbortedError,
];
