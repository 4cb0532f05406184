import type { TransportChannel } from '../transport/transport.interface';
import { TopologyError } from '../messaging.errors';
import { isNotFound, isPreconditionFailed } from '../transport/transport.errors';
import { deadLetterQueueName, type HandlerDefinition, policyDelays, retryQueueName, retryQueueNames } from './handler-definition';
import { AT_LEAST_ONCE, quorumDeadLettering } from './handler-queue-arguments';

/** What declaring a handler's queue may need besides its channel (see declareHandlerQueue). */
export interface EarlierQueues {
  /** Runs `work` on a channel of its own, closed after: a refused declare closes its channel. */
  withChannel(work: (channel: TransportChannel) => Promise<unknown>): Promise<unknown>;
  /** Told when the queue is not what the module would declare anew, and why that matters. */
  kept(text: string): void;
  /** Whether the queue's type was looked at already: once per consumer, since it costs a channel. */
  typeChecked: boolean;
}

/**
 * Declares what a handler needs, in order: its exchange, its queue and bindings, its dead-letter
 * queue, and one retry queue per delay (a TTL queue that dead-letters back into the handler's
 * queue, so a waiting message stays in the broker, not in memory), of the handler queue's type
 * (see declareRetryQueue for the exceptions). Broker refusals become a TopologyError
 * that names the queue or exchange and keeps the broker's reason (e.g. which argument conflicts).
 */
export async function declareHandlerTopology(
  channel: TransportChannel,
  definition: HandlerDefinition,
  earlier: EarlierQueues,
): Promise<void> {
  const { queue, broadcast } = definition;
  for (const { exchange, exchangeType } of definition.bindings) {
    await step(`exchange "${exchange}"`, () => channel.assertExchange(exchange, exchangeType, { durable: true }));
  }
  await declareHandlerQueue(channel, definition, earlier);
  for (const { exchange, routingKeys } of definition.bindings) {
    for (const key of routingKeys) {
      await step(`binding of queue "${queue}" to exchange "${exchange}" with key "${key}"`, () => channel.bindQueue(queue, exchange, key));
    }
  }
  // Same type as the handler's queue: a quorum queue's messages must not wait or end in a
  // classic queue that lives on one node only.
  const dlq = deadLetterQueueName(definition);
  await step(`queue "${dlq}"`, () => channel.assertQueue(dlq, { durable: true, arguments: quorumOrDefault(definition) }));
  for (const delay of policyDelays(definition.retry)) {
    await declareRetryQueue(
      channel,
      definition,
      retryQueueName(definition, delay),
      delay,
      broadcast ? BROADCAST_RETRY_QUEUE_EXPIRES_MS : undefined,
    );
  }
}

/**
 * The handler's queue. A quorum queue an earlier version declared without a dead-letter target
 * cannot be declared with one (406): it is tried on a channel of its own and, refused, declared
 * as it was, with a warning that says how to give it one. A queue declared without a type may
 * still be quorum, by its vhost's default queue type, and so without a target: see checkType.
 */
async function declareHandlerQueue(channel: TransportChannel, definition: HandlerDefinition, earlier: EarlierQueues): Promise<void> {
  const { queue, broadcast, legacyQueueArguments: legacy } = definition;
  const what = `queue "${queue}"`;
  const declare = (on: TransportChannel, args: Record<string, unknown>) =>
    on.assertQueue(queue, { durable: definition.durable, exclusive: broadcast, autoDelete: broadcast, arguments: args });
  if (!legacy) {
    await step(what, () => declare(channel, definition.queueArguments), definition);
    if (definition.queueArguments['x-queue-type'] === undefined && !broadcast)
      await checkType(definition, (own) => declare(own, { ...definition.queueArguments, 'x-queue-type': 'classic' }), earlier);
    return;
  }
  let first: unknown;
  try {
    await earlier.withChannel((own) => declare(own, definition.queueArguments));
    return;
  } catch (error) {
    if (!isPreconditionFailed(error)) throw refused(what, error, definition);
    first = error;
  }
  try {
    await declare(channel, legacy);
  } catch {
    // Not the older form either: what differs is something else, which the first refusal names.
    throw refused(what, first, definition);
  }
  earlier.kept(
    `queue "${queue}" was declared by an earlier version with other dead-letter arguments and keeps them. ${withoutTarget(definition)}` +
      ' Delete the queue when it is empty (the module declares it anew), or give it a policy with the same keys.',
  );
}

/**
 * A queue declared without `x-queue-type` (the module's classic default) is quorum on a vhost
 * whose default queue type is quorum, without the dead-letter target the module gives a quorum
 * queue. Declared again naming classic, such a queue refuses (406): told once, with the fix.
 */
async function checkType(
  definition: HandlerDefinition,
  declareClassic: (channel: TransportChannel) => Promise<unknown>,
  earlier: EarlierQueues,
): Promise<void> {
  if (earlier.typeChecked) return;
  earlier.typeChecked = true;
  try {
    await earlier.withChannel(declareClassic);
  } catch (error) {
    if (!isPreconditionFailed(error)) throw refused(`queue "${definition.queue}"`, error, definition);
    earlier.kept(
      `queue "${definition.queue}" is a quorum queue (its vhost's default queue type) declared without a type. ${withoutTarget(definition)}` +
        ' Set "queueType: \'quorum\'" (in forRoot or on the handler) so the module declares it as one; delete the queue when it is empty first.',
    );
  }
}

/** Why a quorum queue without the module's dead-letter arguments matters. */
function withoutTarget(definition: HandlerDefinition): string {
  const dlq = deadLetterQueueName(definition);
  return (
    `Without a dead-letter target, RabbitMQ 4 drops a message returned to a quorum queue past its delivery limit (20 by default) instead of moving it to "${dlq}"; ` +
    `the module declares ${Object.entries(quorumDeadLettering(dlq))
      .map(([key, value]) => `${key} ${JSON.stringify(value)}`)
      .join(', ')}.`
  );
}

/**
 * A queue where a copy waits `delay` ms and then goes back into the handler's queue, of the
 * handler queue's type (quorum ones dead-letter at-least-once). One that expires (`expiresMs`:
 * deleted when unused that long; a broadcast instance's, an ad-hoc delay's) is durable and
 * classic whatever the handler's type, and says so for a vhost whose default type is quorum: a
 * declare renews a classic queue's x-expires, not a quorum queue's, which would expire with the
 * copies in it however often it is declared again.
 */
function declareRetryQueue(
  channel: TransportChannel,
  definition: HandlerDefinition,
  name: string,
  delay: number,
  expiresMs?: number,
): Promise<void> {
  const type = quorumOrDefault(definition);
  const deadLetterTo = { 'x-message-ttl': delay, 'x-dead-letter-exchange': '', 'x-dead-letter-routing-key': definition.queue };
  return step(`queue "${name}"`, () =>
    channel.assertQueue(
      name,
      expiresMs === undefined
        ? { durable: definition.durable, arguments: { ...deadLetterTo, ...type, ...atLeastOnceDeadLettering(type) } }
        : // Not exclusive: copies waiting in it must outlive a reconnect of the consumer connection.
          { durable: true, arguments: { ...deadLetterTo, ...CLASSIC, 'x-expires': expiresMs } },
    ),
  );
}

/** Named, not left to the vhost's default queue type. */
const CLASSIC = { 'x-queue-type': 'classic' };

/** `<queue>.retry.<ms>ms.adhoc`: for a `context.retry({ delayMs })` delay the policy has no queue for. */
export function adhocRetryQueueName(definition: HandlerDefinition, delayMs: number): string {
  return `${retryQueueName(definition, delayMs)}.adhoc`;
}

/**
 * How long an ad-hoc retry queue outlives its last declaration: twice its delay plus a minute, so
 * it is declared again at most about once per delay (see AdhocRetryQueues). A function of the delay
 * alone: every instance must declare the same arguments, or RabbitMQ refuses the second (406).
 */
export function adhocRetryQueueExpiresMs(delayMs: number): number {
  return Math.min(2 * delayMs + 60_000, MAX_EXPIRES_MS);
}

/** RabbitMQ takes x-expires up to 2^32 - 1 ms; delays are at most 2^31 - 1 ms. */
const MAX_EXPIRES_MS = 2 ** 32 - 1;

export function declareAdhocRetryQueue(channel: TransportChannel, definition: HandlerDefinition, delayMs: number): Promise<void> {
  return declareRetryQueue(channel, definition, adhocRetryQueueName(definition, delayMs), delayMs, adhocRetryQueueExpiresMs(delayMs));
}

/**
 * With `declare: false`: checks, without declaring anything, that every queue and exchange the
 * handler needs exists (its queue, dead-letter queue, retry queues and exchanges; bindings cannot
 * be checked passively), and fails with one TopologyError naming all that are missing. Each
 * missing one costs a channel (a failed passive declare closes it).
 */
export async function checkHandlerTopology(openChannel: () => Promise<TransportChannel>, definition: HandlerDefinition): Promise<void> {
  const needed: Array<{ what: string; check: (channel: TransportChannel) => Promise<unknown> }> = [
    ...definition.bindings.map(({ exchange }) => ({
      what: `exchange "${exchange}"`,
      check: (c: TransportChannel) => c.checkExchange(exchange),
    })),
    ...[definition.queue, deadLetterQueueName(definition), ...retryQueueNames(definition)].map((queue) => ({
      what: `queue "${queue}"`,
      check: (c: TransportChannel) => c.checkQueue(queue),
    })),
  ];
  const missing: string[] = [];
  let channel = await openChannel();
  try {
    for (const { what, check } of needed) {
      try {
        await check(channel);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        missing.push(what);
        channel = await openChannel();
      }
    }
  } finally {
    await channel.close().catch(() => undefined);
  }
  if (missing.length > 0) {
    throw new TopologyError(
      `${definition.name} has "declare: false" but RabbitMQ has no ${missing.join(', ')}: declare them (see docs/topology.md, "declare: false") or let the module declare them`,
    );
  }
}

/**
 * How long a broadcast handler's retry queue outlives the last time it was declared. Its consumer
 * declares it again every half of this (see HandlerConsumer), so it expires only after its
 * instance stopped (or lost the broker for longer than that).
 */
export const BROADCAST_RETRY_QUEUE_EXPIRES_MS = 30 * 60_000;

function quorumOrDefault(definition: HandlerDefinition): Record<string, unknown> {
  // Classic stays without the argument, so queues declared by earlier versions still match.
  return definition.queueArguments['x-queue-type'] === 'quorum' ? { 'x-queue-type': 'quorum' } : {};
}

/**
 * Classic dead-lettering is at-most-once: a copy whose TTL expires while `<queue>` is missing
 * (deleted by an operator, or its node down) is dropped. A quorum retry queue can keep it until
 * `<queue>` confirms it, trying again every `dead_letter_worker_publisher_confirm_timeout`
 * (180 s by default); RabbitMQ needs `reject-publish` overflow for that. Without a length limit
 * it rejects nothing; with one (a policy), a copy refused with a nack makes the module requeue
 * the original after a back-off.
 */
function atLeastOnceDeadLettering(type: Record<string, unknown>): Record<string, unknown> {
  return type['x-queue-type'] === 'quorum' ? AT_LEAST_ONCE : {};
}

async function step(what: string, declare: () => Promise<unknown>, handlerQueue?: HandlerDefinition): Promise<void> {
  try {
    await declare();
  } catch (error) {
    throw refused(what, error, handlerQueue);
  }
}

function refused(what: string, error: unknown, handlerQueue?: HandlerDefinition): TopologyError {
  // RabbitMQ 4.3 closes the connection over such a queue, and the declare only hears that its channel ended.
  const transient =
    handlerQueue && !handlerQueue.durable && !handlerQueue.broadcast
      ? ' (a queue neither durable nor exclusive: RabbitMQ 4.3 refuses those by default; remove "queueOptions.durable: false" (with an "x-expires" argument a durable queue still goes away when unused))'
      : '';
  return new TopologyError(`RabbitMQ refused to declare ${what}: ${(error as Error).message}${transient}`, { cause: error });
}
