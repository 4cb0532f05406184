import { ChannelClosedError, REPLY_CODE } from '../transport.errors';

/**
 * The channel errors RabbitMQ answers with, in its words: a reply code and "<CODE_NAME> - text".
 * Each closes the channel that caused it, as in AMQP.
 */

type Resource = 'queue' | 'exchange';

/** How RabbitMQ names a queue or exchange in its messages. */
export function resourceName(kind: Resource, name: string): string {
  return `${kind} '${name}' in vhost '/'`;
}

export function notFound(kind: Resource, name: string, publishExchange?: string): ChannelClosedError {
  return new ChannelClosedError(`NOT_FOUND - no ${resourceName(kind, name)}`, REPLY_CODE.NOT_FOUND, publishExchange);
}

export function accessRefused(text: string, publishExchange?: string): ChannelClosedError {
  return new ChannelClosedError(`ACCESS_REFUSED - ${text}`, REPLY_CODE.ACCESS_REFUSED, publishExchange);
}

export function preconditionFailed(text: string): ChannelClosedError {
  return new ChannelClosedError(`PRECONDITION_FAILED - ${text}`, REPLY_CODE.PRECONDITION_FAILED);
}

export function resourceLocked(queue: string): ChannelClosedError {
  return new ChannelClosedError(
    `RESOURCE_LOCKED - cannot obtain exclusive access to locked ${resourceName('queue', queue)}. ` +
      'It could be originally declared on another connection or the exclusive property value does not match that of the original declaration.',
    REPLY_CODE.RESOURCE_LOCKED,
  );
}

/** `received`/`current` are already printed (see field-table's printValue), or "none". */
export function inequivalent(field: string, kind: Resource, name: string, received: string, current: string): ChannelClosedError {
  return preconditionFailed(`inequivalent arg '${field}' for ${resourceName(kind, name)}: received ${received} but current is ${current}`);
}

export const DEFAULT_EXCHANGE_REFUSED = 'operation not permitted on the default exchange';

/** The broker closed the connection with an AMQP connection error, in amqplib's words. */
export class BrokerClosedConnectionError extends Error {
  constructor(
    readonly code: number,
    codeName: string,
    text: string,
  ) {
    super(`Connection closed: ${code} (${codeName}) with message "${text}"`);
    this.name = 'BrokerClosedConnectionError';
  }
}

/** What amqplib rejects an operation in flight with when the broker closes its connection. */
export function channelEnded(): ChannelClosedError {
  return new ChannelClosedError('Channel ended, no reply will be forthcoming');
}

/** What amqplib reports for an operation on a channel that is gone (no broker code). */
export function channelGone(): ChannelClosedError {
  return new ChannelClosedError('Channel closed');
}

/**
 * RabbitMQ 4.3 denies queues that are neither durable nor exclusive (the deprecated feature
 * `transient_nonexcl_queues`) by closing the connection with 541, its text cut at AMQP's 255 bytes.
 */
export function transientQueueRefused(): BrokerClosedConnectionError {
  const text =
    'INTERNAL_ERROR - Feature `transient_nonexcl_queues` is deprecated.\n' +
    'By default, this feature is not permitted anymore.\n' +
    'The feature will be removed from a future major RabbitMQ version, regardless of the configuration; actual version to be determined.\n' +
    'To continue using this feature when it is not permitted by default, set the following parameter in your configuration:\n' +
    '    "deprecated_features.permit.transient_nonexcl_queues = true"';
  return new BrokerClosedConnectionError(541, 'INTERNAL-ERROR', `${text.slice(0, 252)}...`);
}
