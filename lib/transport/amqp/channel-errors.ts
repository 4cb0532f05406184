import { IllegalOperationError } from 'amqplib';
import { ChannelClosedError } from '../transport.errors';

/** What amqplib attaches to the error of a channel the broker closed. */
interface AmqplibCloseError extends Error {
  code?: number;
  classId?: number;
  methodId?: number;
}

/** AMQP basic.publish, the method a channel error names when a publish caused it. */
const BASIC_PUBLISH = { classId: 60, methodId: 40 };

/**
 * The broker's reason for closing a channel, as a ChannelClosedError. amqplib wraps the broker's
 * words ("NOT_FOUND - no exchange 'x' in vhost '/'") in its own sentence; they are taken back out
 * for messages. The close frame has no field naming the exchange of a refused publish: RabbitMQ
 * names it only in its reply text, so that is where it is read — here, and nowhere else.
 */
export function closedByBroker(error: AmqplibCloseError): ChannelClosedError {
  const reason = brokerReason(error);
  const byPublish = error.classId === BASIC_PUBLISH.classId && error.methodId === BASIC_PUBLISH.methodId;
  const exchange = byPublish ? /\bexchange '((?:[^']|'')*)' in vhost '/.exec(reason)?.[1] : undefined;
  return new ChannelClosedError(reason, error.code, exchange === 'amq.default' ? '' : exchange, { cause: error });
}

/** A failed channel operation (declare, check, bind, consume...) in the transport's terms. */
export function operationError(error: unknown): unknown {
  if (error instanceof IllegalOperationError) return new ChannelClosedError(error.message, undefined, undefined, { cause: error });
  const code = (error as AmqplibCloseError | undefined)?.code;
  if (typeof code === 'number') return new ChannelClosedError(brokerReason(error as Error), code, undefined, { cause: error });
  return error;
}

/** amqplib's "... with message "<the broker's words>"", or its whole message when it has no such part. */
function brokerReason(error: Error): string {
  return /with message "(.*)"$/s.exec(error.message)?.[1] ?? error.message;
}
