/**
 * The fault driver: until stopped, every few seconds one fault picked at random, applied only to
 * what the soak owns (the PostgreSQL and Redis faults through DataServices). Counts what it did per kind, the messages it deleted with queues (per
 * handler group), and when a queue of a group was missing or conflicting (an event published then
 * may have reached no queue of that group).
 */
import { declareHandlerTopology } from '../lib/topology/handler-topology';
import { defineHandler, type HandlerDefinition } from '../lib/topology/handler-definition';
import { resolveOptions } from '../lib/messaging.options';
import { AmqpChannel } from '../lib/transport/amqp/amqp-channel';
import type { Admin } from './broker-admin';
import { connectionsStartingWith, heldForDeadLettering, rabbitmqctl, readWatermark, setWatermark } from './broker-admin';
import { DATA_FAULTS, type DataFaultKind, type DataServices } from './data-faults';
import { handlerOptions, HANDLERS, names, RETRY, type Handler, type QueueType } from './protocol';

const BROKER_FAULTS = [
  'kill-connections',
  'channel-error-406',
  'channel-error-404',
  'delete-queue',
  'memory-alarm',
  'restart-instance',
] as const;
export const FAULT_KINDS = [...BROKER_FAULTS, ...DATA_FAULTS];
export type FaultKind = (typeof BROKER_FAULTS)[number] | DataFaultKind;

/** The groups whose queues the driver deletes or replaces (the newer features' queues are left alone). */
type QueueGroup = 'command' | 'audit' | 'billing';

/** Messages that went with one queue the driver deleted. */
export interface Deletion {
  handler: QueueGroup;
  /** The group's own queue, or one of its retry queues (which holds only copies of failed tries). */
  queue: 'main' | 'retry';
  /** When the deletion returned: a message can only have been in the queue if it existed by then. */
  at: number;
  count: number;
}

export interface FaultLog {
  counts: Record<FaultKind, number>;
  deleted: Deletion[];
  /** Times a group's queue was gone or conflicting: [from, to] in ms since the epoch. */
  windows: Record<Handler, Array<[number, number]>>;
  /**
   * Times a group's queue was being deleted: a message routed to it then is confirmed by RabbitMQ
   * (the queue went away normally) yet not in the count the deletion returned.
   */
  deletions: Record<Handler, Array<[number, number]>>;
  /** The same for a group's retry queues: a retry copy published then is confirmed and gone with it. */
  retryDeletions: Record<Handler, Array<[number, number]>>;
  /** Every fault injected: kind, what it hit, from/to in ms since the epoch. */
  timeline: Array<{ kind: FaultKind; detail: string; from: number; to: number }>;
  errors: string[];
}

export interface FaultHooks {
  /** SIGTERMs a random instance and starts it again; resolves with the two labels when it is back. */
  restartInstance(): Promise<string>;
  /** Asks a random instance to publish to an exchange that does not exist; returns its label. */
  publishToMissingExchange(): string;
}

export class FaultDriver {
  readonly log: FaultLog = {
    counts: Object.fromEntries(FAULT_KINDS.map((kind) => [kind, 0])) as Record<FaultKind, number>,
    deleted: [],
    windows: perGroup(),
    deletions: perGroup(),
    retryDeletions: perGroup(),
    timeline: [],
    errors: [],
  };
  private deck: FaultKind[] = [];
  private running = false;
  private loop?: Promise<void>;
  private wake?: () => void;
  /** The watermark to restore, while an alarm is raised. */
  private raisedFrom?: string[];
  private readonly n: ReturnType<typeof names>;
  /** The groups' handlers as the module defines them, to declare a deleted queue again as it would. */
  private readonly definitions: Record<QueueGroup, HandlerDefinition>;

  constructor(
    private readonly prefix: string,
    private readonly admin: Admin,
    private readonly data: DataServices,
    private readonly hooks: FaultHooks,
    private readonly options: {
      alarms: boolean;
      alarmMs: number;
      maxAlarms: number;
      minGapMs: number;
      maxGapMs: number;
      queueType: QueueType;
    },
  ) {
    this.n = names(prefix);
    const handlers = handlerOptions(prefix, options.queueType);
    const module = resolveOptions({ uri: 'amqp://unused', serviceName: `${prefix}-fault-driver` });
    const define = (handler: QueueGroup) => defineHandler(`soak ${handler}`, handlers[handler], module, 'fault-driver');
    this.definitions = { command: define('command'), audit: define('audit'), billing: define('billing') };
  }

  start(): void {
    this.running = true;
    this.loop = this.run();
  }

  /** Stops injecting; resolves once the fault in progress is over (and any alarm cleared). */
  async stop(): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await this.clearAlarm();
  }

  /** Restores the watermark if an alarm is raised; safe to call at any time, e.g. on SIGINT. */
  async clearAlarm(): Promise<void> {
    const previous = this.raisedFrom;
    if (!previous) return;
    await setWatermark(previous);
    this.raisedFrom = undefined;
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.pause(this.options.minGapMs + Math.random() * (this.options.maxGapMs - this.options.minGapMs));
      if (!this.running) return;
      const kind = this.pick();
      const from = Date.now();
      try {
        const detail = await this.inject(kind);
        this.log.counts[kind]++;
        this.log.timeline.push({ kind, detail, from, to: Date.now() });
      } catch (error) {
        this.log.errors.push(`${kind}: ${(error as Error).message}`);
      }
    }
  }

  /** Draws from a shuffled deck, so that even a short run injects every kind of fault. */
  private pick(): FaultKind {
    if (this.deck.length === 0) {
      this.deck = [
        'kill-connections',
        'kill-connections',
        'channel-error-406',
        'channel-error-404',
        'delete-queue',
        'delete-queue',
        'restart-instance',
        ...DATA_FAULTS,
      ];
      if (this.options.alarms && this.log.counts['memory-alarm'] < this.options.maxAlarms) this.deck.push('memory-alarm');
      for (let i = this.deck.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [this.deck[i], this.deck[j]] = [this.deck[j], this.deck[i]];
      }
    }
    return this.deck.pop()!;
  }

  /** Injects one fault; resolves with what it hit. */
  private async inject(kind: FaultKind): Promise<string> {
    switch (kind) {
      case 'kill-connections':
        return this.killConnections();
      case 'channel-error-406':
        return this.conflictingQueue();
      case 'channel-error-404':
        return this.hooks.publishToMissingExchange();
      case 'delete-queue':
        return this.deleteAndRecreate();
      case 'memory-alarm':
        return this.memoryAlarm();
      case 'restart-instance':
        return this.hooks.restartInstance();
      default:
        return this.data.inject(kind, (ms) => this.pause(ms, true));
    }
  }

  /** Every connection of one instance, one role of one instance, or every soak connection. */
  private async killConnections(): Promise<string> {
    const all = await connectionsStartingWith(`${this.prefix}-`);
    if (all.length === 0) throw new Error('no soak connection to close');
    const instances = [...new Set(all.map((c) => c.name.split(':')[0]))];
    const instance = instances[Math.floor(Math.random() * instances.length)];
    const roll = Math.random();
    const targets =
      roll < 0.2
        ? all
        : all.filter((c) => c.name.startsWith(`${instance}:`) && (roll < 0.6 || c.name.endsWith(roll < 0.8 ? ':publisher' : ':consumer')));
    await Promise.all(targets.map((c) => rabbitmqctl('close_connection', c.pid, 'soak fault driver').catch(() => undefined)));
    return targets.map((c) => c.name.slice(this.prefix.length + 1)).join(' ');
  }

  /**
   * The commands queue is replaced by one with other arguments: the handlers' re-declare gets 406
   * (a channel error) until the driver removes the conflict again.
   */
  private async conflictingQueue(): Promise<string> {
    const from = Date.now();
    let deleted = await this.deleteMain('command', this.n.commands);
    await this.admin.on((c) => c.assertQueue(this.n.commands, { durable: true, arguments: { 'x-max-priority': 5 } }));
    await this.pause(2000, true);
    deleted += await this.deleteMain('command', this.n.commands);
    await this.declareAsTheModule('command');
    this.log.windows.command.push([from, Date.now()]);
    return `commands queue with x-max-priority for 2 s; ${deleted} messages deleted with it`;
  }

  /** A queue of the soak (a handler's queue or one of its retry queues) deleted and declared again as the module would. */
  private async deleteAndRecreate(): Promise<string> {
    const groups: Array<{ handler: QueueGroup; queue: string }> = [
      { handler: 'command', queue: this.n.commands },
      { handler: 'audit', queue: this.n.audit },
      { handler: 'billing', queue: this.n.billing },
    ];
    const { handler, queue } = groups[Math.floor(Math.random() * groups.length)];
    const delays = RETRY.delaysMs;
    const retry = Math.random() < 0.3 ? delays[Math.floor(Math.random() * delays.length)] : undefined;
    const from = Date.now();
    const name = retry === undefined ? queue : `${queue}.retry.${retry}ms`;
    const deleted = retry === undefined ? await this.deleteMain(handler, name) : await this.deleteRetry(handler, name);
    await this.declareAsTheModule(handler);
    // Only a handler's own queue is routed to by the exchange; a retry queue gone loses only what it held.
    if (retry === undefined) this.log.windows[handler].push([from, Date.now()]);
    return `${name.slice(this.prefix.length + 1)}: ${deleted} messages deleted with it`;
  }

  /** Deletes a handler's own queue, noting when, for messages routed to it while it went away. */
  private async deleteMain(handler: QueueGroup, queue: string): Promise<number> {
    const from = Date.now();
    try {
      const count = await this.admin.deleteQueue(queue);
      this.log.deleted.push({ handler, queue: 'main', at: Date.now(), count });
      return count;
    } finally {
      this.log.deletions[handler].push([from, Date.now()]);
    }
  }

  /**
   * Deletes a retry queue with what it holds: its ready copies and, quorum, the copies it
   * dead-lettered while the handler queue was away and still holds until that queue confirms
   * them. Read first, the held count cannot grow before the deletion: faults run one at a time,
   * so the handler queue exists meanwhile and an expiring copy goes straight into it.
   */
  private async deleteRetry(handler: QueueGroup, queue: string): Promise<number> {
    const [held] = await heldForDeadLettering([queue]);
    const from = Date.now();
    try {
      const count = held + (await this.admin.deleteQueue(queue));
      this.log.deleted.push({ handler, queue: 'retry', at: Date.now(), count });
      return count;
    } finally {
      this.log.retryDeletions[handler].push([from, Date.now()]);
    }
  }

  /** Declares a group's exchange, queue, bindings, dead-letter and retry queues as its handlers do. */
  private async declareAsTheModule(handler: QueueGroup): Promise<void> {
    // The soak's queues are its own, declared anew: nothing earlier to keep or to tell about.
    const earlier = {
      withChannel: (work: (channel: AmqpChannel) => Promise<unknown>) => this.admin.on((c) => work(new AmqpChannel(c))),
      kept: () => undefined,
      typeChecked: true,
    };
    await this.admin.on((c) => declareHandlerTopology(new AmqpChannel(c), this.definitions[handler], earlier));
  }

  private async memoryAlarm(): Promise<string> {
    const previous = await readWatermark();
    this.raisedFrom = previous;
    try {
      await setWatermark(['0']);
      await this.pause(this.options.alarmMs, true);
    } finally {
      await this.clearAlarm();
    }
    return `watermark 0 for ${this.options.alarmMs} ms, then ${previous.join(' ')} again`;
  }

  /** Waits `ms`, or less when stopped (unless `uninterrupted`: a fault in progress runs its course). */
  private pause(ms: number, uninterrupted = false): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const wake = () => {
        if (!uninterrupted) done();
      };
      this.wake = wake;
      function done() {
        clearTimeout(timer);
        resolve();
      }
    });
  }
}

/** An empty list per handler group (the newer features' stay empty: the driver leaves their queues alone). */
function perGroup(): Record<Handler, Array<[number, number]>> {
  return Object.fromEntries(HANDLERS.map((h) => [h, []])) as unknown as Record<Handler, Array<[number, number]>>;
}
