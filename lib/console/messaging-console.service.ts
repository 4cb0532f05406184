import { Inject, Injectable, Logger, NotFoundException, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { MessagingConfigError, QueueNotFoundError } from '../messaging.errors';
import { ConnectionDirectory } from '../nest/connection-directory';
import type { DeadLetterPage } from '../operations/dead-letter';
import type { DeadLetters } from '../operations/dead-letters';
import { getDeadLettersToken, getMessagingAdminToken, getMessagingHealthToken } from '../operations/inject-operations.decorator';
import type { HandlerSummary, MessagingAdmin, QueueDepth } from '../operations/messaging-admin';
import type { MessagingHealth } from '../operations/messaging-health';
import { withinOrThrow } from '../util/within';
import { CONSOLE_OPTIONS } from './console.constants';
import type { ResolvedConsoleOptions } from './console.options';
import { type OutcomeRates, OutcomeRateWindow } from './outcome-rates';
import type { PageWindow } from './paging';

/** How often the outcome counts are sampled for rates. */
const SAMPLE_EVERY_MS = 10_000;
/** A queue's depth not read by then is shown as a problem: the page never hangs on a stalled broker. */
const DEPTH_TIMEOUT_MS = 5_000;

/** One connection's operator services. */
interface Connection {
  name: string;
  admin: MessagingAdmin;
  health: MessagingHealth;
  deadLetters: DeadLetters;
}

export interface HandlerOverview {
  summary: HandlerSummary;
  depth?: QueueDepth;
  /** Letters in its dead-letter queue. */
  deadLetters?: number;
  /** Why a depth could not be read. */
  problem?: string;
  /** Per minute, over the last minute. */
  rates?: OutcomeRates;
}

export interface ConnectionOverview {
  name: string;
  ready: boolean;
  notReadyReason?: string;
  connected: boolean;
  inFlight: number;
  handlers: HandlerOverview[];
}

/** What the console's pages and API read and do, across every connection of the app. */
@Injectable()
export class MessagingConsoleService implements OnModuleInit, OnApplicationShutdown {
  private connections: Connection[] = [];
  private readonly rates = new OutcomeRateWindow();
  private sampler?: NodeJS.Timeout;

  constructor(
    private readonly moduleRef: ModuleRef,
    @Inject(CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
  ) {}

  onModuleInit(): void {
    this.connections = this.connectionNames().map((name) => ({
      name,
      admin: this.moduleRef.get<MessagingAdmin>(getMessagingAdminToken(name), { strict: false }),
      health: this.moduleRef.get<MessagingHealth>(getMessagingHealthToken(name), { strict: false }),
      deadLetters: this.moduleRef.get<DeadLetters>(getDeadLettersToken(name), { strict: false }),
    }));
    if (!this.options.guard) {
      new Logger('MessagingConsole').warn(
        `The messaging console at ${this.options.path} runs WITHOUT authentication (unsafeNoAuth: true): anyone who reaches it ` +
          'can read message bodies and replay or delete dead letters. Only on a developer machine; pass "guard" anywhere else.',
      );
    }
    this.sampler = setInterval(() => this.sample(), SAMPLE_EVERY_MS).unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.sampler);
  }

  async overview(): Promise<ConnectionOverview[]> {
    const at = Date.now();
    return Promise.all(
      this.connections.map(async ({ name, admin, health }) => ({
        name,
        ready: health.isReady(),
        notReadyReason: health.notReadyReason(),
        connected: health.isConnected(),
        inFlight: health.inFlight(),
        handlers: await Promise.all(admin.handlers().map((summary) => this.handlerOverview(name, admin, summary, at))),
      })),
    );
  }

  /** A page of the dead letters of `queue`, the base queue of one of the connection's handlers. */
  async deadLetters(connection: string, queue: string, window: PageWindow): Promise<DeadLetterPage> {
    try {
      return await this.handlerOf(connection, queue).deadLetters.browse(queue, { offset: window.offset, limit: window.limit });
    } catch (error) {
      // Its dead-letter queue was deleted (or never declared, with `declare: false`).
      if (error instanceof QueueNotFoundError) throw new NotFoundException(error.message);
      throw error;
    }
  }

  /** Replays the letters with these ids, or all of them. */
  replay(connection: string, queue: string, letters: string[] | 'all'): Promise<number> {
    const { deadLetters } = this.handlerOf(connection, queue);
    return letters === 'all' ? deadLetters.replay(queue) : deadLetters.replay(queue, { ids: letters });
  }

  discard(connection: string, queue: string, id: string): Promise<number> {
    return this.handlerOf(connection, queue).deadLetters.discard(queue, [id]);
  }

  /**
   * The connection, when `queue` is the base queue of one of its handlers: the console reads and
   * changes no other queue, whatever a request names. 404 otherwise.
   */
  private handlerOf(connection: string, queue: string): Connection {
    const found = this.connections.find(({ name }) => name === connection);
    if (!found || !found.admin.handlers().some((handler) => handler.baseQueue === queue)) {
      throw new NotFoundException('No handler of this application consumes that queue on that connection');
    }
    return found;
  }

  private async handlerOverview(connection: string, admin: MessagingAdmin, summary: HandlerSummary, at: number): Promise<HandlerOverview> {
    const depthOf = (queue: string) =>
      withinOrThrow(admin.queueDepth(queue), DEPTH_TIMEOUT_MS, () => new Error('the broker did not answer in time'));
    const [depth, deadLetters] = await Promise.allSettled([depthOf(summary.queue), depthOf(summary.deadLetterQueue)]);
    const failed = [depth, deadLetters].find((result) => result.status === 'rejected');
    return {
      summary,
      depth: depth.status === 'fulfilled' ? depth.value : undefined,
      deadLetters: deadLetters.status === 'fulfilled' ? deadLetters.value.messages : undefined,
      problem: failed ? String((failed.reason as Error)?.message ?? failed.reason) : undefined,
      rates: summary.outcomes && this.rates.rates(rateKey(connection, summary.queue), summary.outcomes, at),
    };
  }

  private sample(): void {
    const at = Date.now();
    for (const { name, admin } of this.connections) {
      for (const { queue, outcomes } of admin.handlers()) if (outcomes) this.rates.record(rateKey(name, queue), outcomes, at);
    }
  }

  private connectionNames(): string[] {
    let directory: ConnectionDirectory;
    try {
      directory = this.moduleRef.get(ConnectionDirectory, { strict: false });
    } catch {
      throw new MessagingConfigError(
        'MessagingConsoleModule needs MessagingModule: import MessagingModule.forRoot({ ... }) in the same application',
      );
    }
    return [...new Set(directory.names())];
  }
}

function rateKey(connection: string, queue: string): string {
  return `${connection}\0${queue}`;
}
