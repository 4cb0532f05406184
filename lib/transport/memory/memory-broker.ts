import type { DeleteQueueOptions, ExchangeKind, ExchangeOptions, MessageProperties, QueueInfo, QueueOptions } from '../transport.interface';
import { inBrokerScope } from './broker-scope';
import { deadLettered, type DeathReason, isCycle } from './dead-letter';
import { generatedName } from './generated-names';
import type { MemoryConnection } from './memory-connection';
import { assertExchangeEquivalent, type ExchangeDeclaration, MemoryExchange } from './memory-exchange';
import type { Envelope, QueuedMessage } from './memory-message';
import { MemoryQueue, type QueueHost } from './memory-queue';
import { assertEquivalent, declarationOf, settingsOf } from './queue-arguments';
import {
  accessRefused,
  channelEnded,
  DEFAULT_EXCHANGE_REFUSED,
  notFound,
  preconditionFailed,
  resourceLocked,
  resourceName,
  transientQueueRefused,
} from './refusals';

/** A client publish, as the harness sees it. */
export interface PublishRecord {
  exchange: string;
  routingKey: string;
  content: Buffer;
  properties: MessageProperties;
  /** The queues it was routed to. */
  queues: string[];
}

export interface BrokerStats {
  /** Messages ready in queues that have at least one consumer. */
  ready: number;
  /** Delivered, acknowledgement expected, not yet settled. */
  unacked: number;
  /** Publishes on confirm channels not yet answered. */
  confirms: number;
  /** Deliveries or channel events (confirms, returns, cancels, closes) are scheduled. */
  dispatching: boolean;
}

export interface RouteOutcome {
  queues: MemoryQueue[];
  /** A queue at its length limit with reject-publish overflow refused it. */
  refused: boolean;
}

const PUBLISH_LOG_SIZE = 10_000;

const PREDECLARED: Array<[string, ExchangeKind]> = [
  ['', 'direct'],
  ['amq.direct', 'direct'],
  ['amq.topic', 'topic'],
  ['amq.fanout', 'fanout'],
  ['amq.headers', 'headers'],
  ['amq.match', 'headers'],
];

const REPLY_QUEUE_PREFIX = 'amq.rabbitmq.reply-to.';

/**
 * One in-process RabbitMQ vhost: exchanges, queues, bindings, routing and dead-lettering, shared
 * by every connection to the same `memory://<name>`. Refusals are thrown as ChannelClosedError
 * with RabbitMQ's code and words; the channel that asked closes on them.
 */
export class MemoryBroker implements QueueHost {
  private readonly exchanges = new Map<string, MemoryExchange>();
  private readonly queueMap = new Map<string, MemoryQueue>();
  /** Direct reply-to: one hidden queue per channel consuming `amq.rabbitmq.reply-to`. */
  private readonly replyQueues = new Map<string, MemoryQueue>();
  private readonly connectionSet = new Set<MemoryConnection>();
  private log: PublishRecord[] = [];
  private readonly toDispatch = new Set<MemoryQueue>();
  private dispatchScheduled = false;
  private deferred = 0;

  constructor(readonly name: string) {
    for (const [exchange, kind] of PREDECLARED) {
      this.exchanges.set(exchange, new MemoryExchange(exchange, { kind, durable: true, autoDelete: false, internal: false }));
    }
  }

  attach(connection: MemoryConnection): void {
    this.connectionSet.add(connection);
  }

  /** A connection went: its exclusive queues go with it. */
  detach(connection: MemoryConnection): void {
    this.connectionSet.delete(connection);
    for (const queue of [...this.queueMap.values()]) {
      if (queue.owner === connection) this.removeQueue(queue);
    }
  }

  declareExchange(name: string, kind: ExchangeKind, options: ExchangeOptions = {}): void {
    if (name === '') throw accessRefused(DEFAULT_EXCHANGE_REFUSED);
    const declaration: ExchangeDeclaration = {
      kind,
      durable: options.durable ?? true,
      autoDelete: options.autoDelete ?? false,
      internal: options.internal ?? false,
    };
    const existing = this.exchanges.get(name);
    if (existing) return assertExchangeEquivalent(name, existing.declaration, declaration);
    if (name.startsWith('amq.')) throw accessRefused(`exchange name '${name}' contains reserved prefix 'amq.*'`);
    this.exchanges.set(name, new MemoryExchange(name, declaration));
  }

  checkExchange(name: string): void {
    if (name === '') throw accessRefused(DEFAULT_EXCHANGE_REFUSED);
    this.exchangeNamed(name);
  }

  deleteExchange(name: string): void {
    if (name === '') throw accessRefused(DEFAULT_EXCHANGE_REFUSED);
    if (PREDECLARED.some(([predeclared]) => predeclared === name)) {
      throw accessRefused(`deletion of system ${resourceName('exchange', name)} not allowed`);
    }
    this.exchanges.delete(name);
  }

  declareQueue(connection: MemoryConnection, name: string, options?: QueueOptions): QueueInfo {
    const declaration = declarationOf(options);
    // Checked before the queue is looked up: RabbitMQ refuses to redeclare even its own
    // server-named queues (amq.gen-*), whoever asks.
    if (name.startsWith('amq.')) throw accessRefused(`queue name '${name}' contains reserved prefix 'amq.*'`);
    const existing = name === '' ? undefined : this.queueMap.get(name);
    if (existing) {
      if (existing.owner !== (declaration.exclusive ? connection : undefined)) throw resourceLocked(name);
      assertEquivalent(name, existing.declaration, declaration);
      existing.declared();
      return info(existing);
    }
    if (!declaration.durable && !declaration.exclusive && declaration.arguments['x-queue-type'] !== 'quorum') {
      // Not a channel error: RabbitMQ 4.3 closes the whole connection, and the declare only hears
      // that its channel ended, as with amqplib.
      connection.closedByBroker(transientQueueRefused());
      throw channelEnded();
    }
    const queueName = name === '' ? generatedName('amq.gen-') : name;
    const settings = settingsOf(queueName, declaration);
    const queue = new MemoryQueue(queueName, declaration, settings, declaration.exclusive ? connection : undefined, this);
    this.queueMap.set(queueName, queue);
    return info(queue);
  }

  checkQueue(connection: MemoryConnection, name: string): QueueInfo {
    // RabbitMQ answers a passive declare of the pseudo-queue as if someone consumed it.
    if (name === REPLY_QUEUE_PREFIX.slice(0, -1)) return { queue: name, messageCount: 0, consumerCount: 1 };
    const queue = this.queueForUse(connection, name);
    // A passive declare is a use, as a declare is: it renews a classic queue's x-expires lease.
    queue.declared();
    return info(queue);
  }

  deleteQueue(connection: MemoryConnection, name: string, options: DeleteQueueOptions = {}): { messageCount: number } {
    const queue = this.queueMap.get(name);
    if (!queue) return { messageCount: 0 };
    this.assertAccess(connection, queue);
    // RabbitMQ's wording, and like RabbitMQ only ready messages count for `ifEmpty`.
    if (options.ifUnused && queue.consumers.length > 0) throw preconditionFailed(`queue '${name}' in vhost '/' in use`);
    if (options.ifEmpty && queue.readyCount() > 0) throw preconditionFailed(`queue '${name}' in vhost '/' not empty`);
    return { messageCount: this.removeQueue(queue) };
  }

  purgeQueue(connection: MemoryConnection, name: string): { messageCount: number } {
    return { messageCount: this.queueForUse(connection, name).purge() };
  }

  bindQueue(connection: MemoryConnection, queue: string, exchange: string, routingKey: string, args: Record<string, unknown> = {}): void {
    if (exchange === '') throw accessRefused(DEFAULT_EXCHANGE_REFUSED);
    const target = this.exchangeNamed(exchange);
    target.bind(this.queueForUse(connection, queue).name, routingKey, { ...args });
  }

  /**
   * Unbinding what is not there (binding, queue or exchange) is not an error, not even on another
   * connection's exclusive queue: RabbitMQ checks exclusivity only for a binding it found.
   */
  unbindQueue(connection: MemoryConnection, queue: string, exchange: string, routingKey: string, args: Record<string, unknown> = {}): void {
    if (exchange === '') throw accessRefused(DEFAULT_EXCHANGE_REFUSED);
    const source = this.exchanges.get(exchange);
    const target = this.queueMap.get(queue);
    if (!source || !target || !source.hasBinding(queue, routingKey, args)) return;
    this.assertAccess(connection, target);
    source.unbind(queue, routingKey, args);
    this.dropIfUnused(source);
  }

  /** A queue to consume or get from: it must exist and not be another connection's exclusive queue. */
  queueForUse(connection: MemoryConnection, name: string): MemoryQueue {
    const queue = this.queueMap.get(name);
    if (!queue) throw notFound('queue', name);
    this.assertAccess(connection, queue);
    return queue;
  }

  /** Routes a client publish; throws when the broker refuses it (the channel then closes). */
  publish(envelope: Envelope): RouteOutcome {
    const exchangeName = envelope.exchange;
    const exchange = this.exchanges.get(exchangeName);
    if (!exchange) throw notFound('exchange', exchangeName, exchangeName);
    if (exchange.declaration.internal) {
      throw accessRefused(`cannot publish to internal ${resourceName('exchange', exchangeName)}`, exchangeName);
    }
    const queues = this.targets(exchange, envelope);
    const now = Date.now();
    let refused = false;
    for (const queue of queues) {
      if (!queue.enqueue(envelope, now)) refused = true;
    }
    this.record({ ...envelope, queues: queues.map((q) => q.name) });
    return { queues, refused };
  }

  /** A channel starts consuming direct replies: its own hidden queue, gone with its consumer. */
  openReplyQueue(): MemoryQueue {
    const name = generatedName(REPLY_QUEUE_PREFIX);
    const declaration = declarationOf({ durable: false, exclusive: true, autoDelete: true });
    const queue = new MemoryQueue(name, declaration, settingsOf(name, declaration), undefined, this);
    this.replyQueues.set(name, queue);
    return queue;
  }

  /** Runs a channel event in a later tick, counted in `stats().dispatching` until it ran. */
  defer(task: () => void): void {
    this.deferred++;
    setImmediate(
      inBrokerScope(() => {
        this.deferred--;
        task();
      }),
    );
  }

  scheduleDispatch(queue: MemoryQueue): void {
    this.toDispatch.add(queue);
    if (this.dispatchScheduled) return;
    this.dispatchScheduled = true;
    // Never inside the publish (or ack) that made a delivery possible, as on a real broker.
    setImmediate(
      inBrokerScope(() => {
        this.dispatchScheduled = false;
        const queues = [...this.toDispatch];
        this.toDispatch.clear();
        for (const q of queues) if (!q.deleted) q.dispatch();
      }),
    );
  }

  deadLetter(queue: MemoryQueue, message: QueuedMessage, reason: DeathReason): void {
    const { deadLetterExchange, deadLetterRoutingKey } = queue.settings;
    if (deadLetterExchange === undefined) return;
    // A missing target drops the message: classic dead-lettering is at-most-once.
    const exchange = this.exchanges.get(deadLetterExchange);
    if (!exchange) return;
    const now = Date.now();
    const envelope = deadLettered(message.envelope, {
      queue: queue.name,
      reason,
      exchange: deadLetterExchange,
      routingKey: deadLetterRoutingKey,
      now,
    });
    for (const target of this.targets(exchange, envelope)) {
      if (!isCycle(envelope, target.name)) target.enqueue(envelope, now);
    }
  }

  retire(queue: MemoryQueue): void {
    if (!queue.deleted) this.removeQueue(queue);
  }

  // ---- for tests and the harness ----

  /** The last 10,000 client publishes, oldest first. */
  publishes(): PublishRecord[] {
    return this.log.slice(-PUBLISH_LOG_SIZE);
  }

  stats(): BrokerStats {
    let ready = 0;
    for (const queue of [...this.queueMap.values(), ...this.replyQueues.values()]) {
      if (queue.consumers.length > 0) ready += queue.readyCount();
    }
    let unacked = 0;
    let confirms = 0;
    for (const connection of this.connectionSet) {
      for (const channel of connection.openChannels()) {
        unacked += channel.unackedCount;
        confirms += channel.pendingConfirmCount;
      }
    }
    return { ready, unacked, confirms, dispatching: this.dispatchScheduled || this.deferred > 0 };
  }

  /** Every delayed message (a TTL, in an unconsumed queue with a dead-letter exchange) dead-letters now, as if expired. */
  releaseDelayed(): void {
    for (const queue of [...this.queueMap.values()]) queue.releaseDelayed();
  }

  queues(): QueueInfo[] {
    return [...this.queueMap.values()].map(info);
  }

  connections(): Array<{ name: string }> {
    return [...this.connectionSet].map((c) => ({ name: c.connectionName }));
  }

  /** Closes connections from the broker's side (all, or those the predicate picks), as an operator would. */
  dropConnections(predicate: (connection: { name: string }) => boolean = () => true): number {
    const dropped = [...this.connectionSet].filter((c) => predicate({ name: c.connectionName }));
    for (const connection of dropped) connection.closedByBroker();
    return dropped.length;
  }

  private targets(exchange: MemoryExchange, envelope: Envelope): MemoryQueue[] {
    if (exchange.name === '') {
      const queue = this.queueMap.get(envelope.routingKey) ?? this.replyQueues.get(envelope.routingKey);
      return queue ? [queue] : [];
    }
    const queues: MemoryQueue[] = [];
    for (const name of exchange.route(envelope.routingKey, envelope.properties.headers)) {
      const queue = this.queueMap.get(name);
      if (queue) queues.push(queue);
    }
    return queues;
  }

  private exchangeNamed(name: string): MemoryExchange {
    const exchange = this.exchanges.get(name);
    if (!exchange) throw notFound('exchange', name);
    return exchange;
  }

  private assertAccess(connection: MemoryConnection, queue: MemoryQueue): void {
    if (queue.owner !== undefined && queue.owner !== connection) throw resourceLocked(queue.name);
  }

  private removeQueue(queue: MemoryQueue): number {
    this.queueMap.delete(queue.name);
    this.replyQueues.delete(queue.name);
    this.toDispatch.delete(queue);
    for (const exchange of [...this.exchanges.values()]) {
      if (exchange.unbindQueue(queue.name)) this.dropIfUnused(exchange);
    }
    return queue.delete();
  }

  /** An auto-delete exchange goes when its last binding went. */
  private dropIfUnused(exchange: MemoryExchange): void {
    if (exchange.declaration.autoDelete && exchange.bindingCount === 0) this.exchanges.delete(exchange.name);
  }

  private record(entry: PublishRecord): void {
    this.log.push(entry);
    // Trimmed in batches: one splice per 10,000 publishes rather than a shift per publish.
    if (this.log.length >= 2 * PUBLISH_LOG_SIZE) this.log = this.log.slice(-PUBLISH_LOG_SIZE);
  }
}

function info(queue: MemoryQueue): QueueInfo {
  return { queue: queue.name, messageCount: queue.readyCount(), consumerCount: queue.consumers.length };
}
