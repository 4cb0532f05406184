import { AsyncResource } from 'node:async_hooks';

/**
 * The broker's own execution context, made when this file loads (outside any request). On
 * RabbitMQ a delivery, a confirm or an expiry comes from the socket, in no caller's context; here
 * they would otherwise run in the async context of the publish (or ack) that scheduled them, and
 * AsyncLocalStorage users (nestjs-cls, OpenTelemetry) would see the sender's context in a consumer.
 */
const scope = new AsyncResource('nestjs-messaging:memory-broker');
// Destroyed for async_hooks at once, still entered below: the context it carries lives on the
// object (AsyncLocalStorage keeps its stores there, or in the frame it captured on Node 24), not
// on its id. Left alive, it is an async resource that never ends, and Jest's --detectOpenHandles
// reports it after every test file that loads the library.
scope.emitDestroy();

/** `task`, to be run in the broker's context whoever schedules it. */
export function inBrokerScope(task: () => void): () => void {
  return () => scope.runInAsyncScope(task);
}
