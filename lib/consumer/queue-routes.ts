import { isDeepStrictEqual } from 'node:util';
import type { MessageContext } from '../interfaces/message-context.interface';
import { MessagingConfigError, NoHandlerError } from '../messaging.errors';
import type { HandlerDefinition, ResolvedBinding } from '../topology/handler-definition';
import { matchesTopic, topicPatternsOverlap } from './topic-pattern';

/** Calls a handler with a message; what a consumer runs for each delivery. */
export interface Invoker {
  invoke(payload: unknown, context: MessageContext): unknown;
  /**
   * Consuming stopped: runs what it holds back now (a batch being gathered) and holds nothing back
   * from then on, so no handler waits for a timer that would fire after shutdown.
   */
  stop?(): void;
}

/** A handler of a queue, with what it takes. */
export interface QueueRoute {
  definition: HandlerDefinition;
  invoker: Invoker;
}

/**
 * The handlers of one queue, each taking the messages of its `messageType` and routing-key
 * patterns. The routing key is the one the message was first published with (retry copies keep
 * it), so a retried message comes back to the same handler. A message no handler takes fails
 * with NoHandlerError, which dead-letters it. Startup has made sure no message can reach two.
 *
 * That routing key is forgeable: for a delivery through the default exchange it comes from the
 * `x-original-*` headers (see originOf), which any producer allowed to publish to the queue can
 * write. It picks which of the queue's own handlers runs, as the producer's routing key and type
 * do; it is a dispatch, never a permission: nothing here (or anywhere in the module) decides
 * access by it. Check rights in a guard on facts a producer cannot set (e.g. the AMQP user id).
 */
export class QueueRoutes implements Invoker {
  constructor(
    private readonly queue: string,
    private readonly routes: QueueRoute[],
  ) {}

  invoke(payload: unknown, context: MessageContext): unknown {
    const type = context.raw.properties.type as string | undefined;
    const route = this.routes.find(({ definition }) => takes(definition, context.routingKey, type, context.pattern));
    if (!route) {
      throw new NoHandlerError(
        `No handler of queue "${this.queue}" takes a message with routing key "${context.routingKey}"` +
          `${type === undefined ? ' and no type' : ` and type "${type}"`}` +
          `${context.pattern === undefined ? '' : ` and Nest pattern ${context.pattern}`} (handlers: ${this.routes.map(({ definition }) => describe(definition)).join('; ')})`,
      );
    }
    return route.invoker.invoke(payload, context);
  }

  /** Each handler's invoker may hold messages back (a batch handler with a `messageType`). */
  stop(): void {
    for (const { invoker } of this.routes) invoker.stop?.();
  }
}

/** Whether a handler needs picking: it shares its queue, or takes only one type of message. */
export function needsRouting(definitions: HandlerDefinition[]): boolean {
  return definitions.length > 1 || definitions[0].messageType !== undefined || definitions[0].nestRoute !== undefined;
}

/**
 * One definition of a queue for the consumer of handlers sharing it: their bindings together and
 * the queue-level options they must agree on. Refuses handlers that a message could reach both,
 * or that disagree on how the queue behaves.
 */
export function queueDefinition(definitions: HandlerDefinition[]): HandlerDefinition {
  const [first, ...others] = definitions;
  if (others.length === 0) return first;
  const names = definitions.map((d) => d.name).join(', ');
  for (const definition of definitions) {
    if (definition.broadcast) fail(first.queue, `${definition.name} is a broadcast handler: broadcast queues are not shared`);
    if (definition.batch) fail(first.queue, `${definition.name} is a batch handler: a batch handler has its queue to itself`);
  }
  for (const other of others) {
    for (const option of ['prefetch', 'retry', 'durable', 'queueArguments', 'declare', 'idempotent', 'format'] as const) {
      if (!isDeepStrictEqual(first[option], other[option])) {
        fail(first.queue, `${first.name} and ${other.name} set "${option}" differently; handlers of one queue share it`);
      }
    }
  }
  for (let i = 0; i < definitions.length; i++) {
    for (let j = i + 1; j < definitions.length; j++) {
      if (overlap(definitions[i], definitions[j])) {
        fail(
          first.queue,
          `a message can reach both ${definitions[i].name} (${describe(definitions[i])}) and ${definitions[j].name} (${describe(definitions[j])}); ` +
            'give each a "messageType", a Nest "pattern" or "routingKey" patterns no message matches twice',
        );
      }
    }
  }
  return {
    ...first,
    name: names,
    messageType: undefined,
    nestRoute: undefined,
    routingPatterns: [],
    bindings: uniqueBindings(definitions.flatMap((d) => d.bindings)),
  };
}

function takes(definition: HandlerDefinition, routingKey: string, type: string | undefined, pattern: string | undefined): boolean {
  if (definition.messageType !== undefined && definition.messageType !== type) return false;
  if (definition.nestRoute !== undefined && definition.nestRoute !== pattern) return false;
  return definition.routingPatterns.length === 0 || definition.routingPatterns.some((pattern) => matchesTopic(pattern, routingKey));
}

function overlap(a: HandlerDefinition, b: HandlerDefinition): boolean {
  if (a.messageType !== undefined && b.messageType !== undefined && a.messageType !== b.messageType) return false;
  if (a.nestRoute !== undefined && b.nestRoute !== undefined && a.nestRoute !== b.nestRoute) return false;
  if (a.routingPatterns.length === 0 || b.routingPatterns.length === 0) return true;
  return a.routingPatterns.some((p) => b.routingPatterns.some((q) => topicPatternsOverlap(p, q)));
}

function describe(definition: HandlerDefinition): string {
  const parts = [
    ...(definition.nestRoute === undefined ? [] : [`Nest pattern ${definition.nestRoute}`]),
    ...(definition.messageType === undefined ? [] : [`type "${definition.messageType}"`]),
    ...(definition.routingPatterns.length === 0 ? [] : [`keys ${definition.routingPatterns.map((k) => `"${k}"`).join(', ')}`]),
  ];
  return parts.length === 0 ? 'every message' : parts.join(', ');
}

function uniqueBindings(bindings: ResolvedBinding[]): ResolvedBinding[] {
  const byExchange = new Map<string, ResolvedBinding>();
  for (const binding of bindings) {
    const seen = byExchange.get(binding.exchange);
    if (seen && seen.exchangeType !== binding.exchangeType) {
      throw new MessagingConfigError(
        `Exchange "${binding.exchange}" is bound as ${seen.exchangeType} and as ${binding.exchangeType} by handlers of one app`,
      );
    }
    byExchange.set(binding.exchange, { ...binding, routingKeys: [...new Set([...(seen?.routingKeys ?? []), ...binding.routingKeys])] });
  }
  return [...byExchange.values()];
}

function fail(queue: string, reason: string): never {
  throw new MessagingConfigError(`Queue "${queue}" has several handlers, but ${reason}`);
}
