import { AsyncResource } from 'node:async_hooks';

/**
 * The broker's own execution context, made when this file loads (outside any request). On
 * RabbitMQ a delivery, a confirm or an expiry comes from the socket, in no caller's context; here
 * they would otherwise run in the async context of the publish (or ack) that scheduled them, and
 * AsyncLocalStorage users (nestjs-cls, OpenTelemetry) would see the sender's context in a consumer.
 */
const scope = new AsyncResource('nestjs-messaging:memory-broker');

/** `task`, to be run in the broker's context whoever schedules it. */
export function inBrokerScope(task: () => void): () => void {
  return () => scope.runInAsyncScope(task);
}
