/** AMQP reply codes the module acts on. */
export const REPLY_CODE = {
  ACCESS_REFUSED: 403,
  NOT_FOUND: 404,
  RESOURCE_LOCKED: 405,
  PRECONDITION_FAILED: 406,
} as const;

/** The broker answered 404: the queue or exchange asked for does not exist. */
export function isNotFound(error: unknown): error is ChannelClosedError {
  return error instanceof ChannelClosedError && error.code === REPLY_CODE.NOT_FOUND;
}

/** The broker answered 406: e.g. a queue declared again with other arguments than it has. */
export function isPreconditionFailed(error: unknown): error is ChannelClosedError {
  return error instanceof ChannelClosedError && error.code === REPLY_CODE.PRECONDITION_FAILED;
}

/**
 * A channel is closed, or the broker closed it by refusing an operation (in AMQP a refused
 * declare, check or publish ends the channel). `code` is the AMQP reply code when the broker gave
 * one; `reason` is the broker's own words (e.g. "NOT_FOUND - no queue 'x' in vhost '/'").
 * `publishExchange` names the exchange when a publish to it was what the broker refused.
 */
export class ChannelClosedError extends Error {
  constructor(
    readonly reason: string,
    readonly code?: number,
    readonly publishExchange?: string,
    options?: { cause?: unknown },
  ) {
    super(reason, options);
    this.name = 'ChannelClosedError';
  }
}

/** The broker refused the connection's opening handshake: its login (user name, password) or its vhost. */
export class HandshakeRefusedError extends Error {
  constructor(
    readonly refused: 'login' | 'vhost',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'HandshakeRefusedError';
  }
}
