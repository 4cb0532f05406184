import { randomUUID } from 'node:crypto';
import { Inject, Injectable, type Logger } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import {
  BROKER_DEATH_HEADERS,
  HEADER_ATTEMPTS,
  HEADER_COUNTERS_CHECK,
  HEADER_DELIVERY_COUNT,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_NAME,
  HEADER_ERROR_STACK,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_ROUTING_KEY,
  HEADER_REDELIVERIES,
  MESSAGING_LOGGER,
  MESSAGING_OPTIONS,
} from '../messaging.constants';
import { ConnectionLostError, MessagingError, QueueNotFoundError, UnroutableError } from '../messaging.errors';
import { renamed, type ResolvedMessagingOptions } from '../messaging.options';
import { Publisher } from '../publisher/publisher';
import { HandlerConsumers } from '../nest/handler-consumers';
import { isNotFound } from '../transport/transport.errors';
import type { Message, TransportChannel } from '../transport/transport.interface';
import { KeyedSerial } from '../util/keyed-serial';
import { own } from '../util/own-headers';
import { checkIds, checkPage, type DeadLetter, deadLetterId, deadLetterOf, type DeadLetterPage, MAX_HELD, MAX_OFFSET } from './dead-letter';
import { type LetterVisitor, scanLetters } from './letter-scan';

/**
 * Left out of a replayed message: it starts afresh. RabbitMQ's own dead-lettering headers too: a
 * message RabbitMQ dead-lettered out of its queue (a delivery limit, a policy) and sent back there
 * with its `x-death` would be dropped by RabbitMQ's dead-letter cycle check on its first retry.
 */
const DEAD_LETTER_HEADERS = [
  ...BROKER_DEATH_HEADERS,
  HEADER_COUNTERS_CHECK,
  HEADER_ERROR_NAME,
  HEADER_ERROR_MESSAGE,
  HEADER_ERROR_STACK,
  HEADER_ATTEMPTS,
  HEADER_REDELIVERIES,
  HEADER_ORIGINAL_QUEUE,
  HEADER_ORIGINAL_EXCHANGE,
  HEADER_ORIGINAL_ROUTING_KEY,
];

/** How long an operation waits for the letters it left to be back in their queue (see onLetters). */
const RETURN_TIMEOUT_MS = 5_000;

/**
 * A letter put back this many times goes back as a fresh copy instead (see onLetters): RabbitMQ
 * 4.0-4.2 count every return toward a quorum queue's delivery limit (20 by default) and drop a
 * letter past it, a dead-letter queue having no dead-letter target of its own.
 */
const FRESH_COPY_AFTER_RETURNS = 10;

/**
 * Puts dead-lettered messages back to work, and lets an operator read and remove them, keeping
 * the order of the letters left. Every operation on one dead-letter queue waits for the one before
 * it in this instance: two readers holding parts of a queue at once could put them back out of
 * order. Each reads from the head, holding what it leaves unacked, and closes its consumer to put
 * it back (see scanLetters). A classic queue puts each letter back at its position, so reading
 * stops at what the operation needs. A quorum queue puts letters back behind those it took back
 * before and still holds at its head, so an operation on one (or on a queue whose type this app
 * does not know) reads every letter up to MAX_HELD: what any earlier operation put back.
 */
@Injectable()
export class DeadLetters {
  private readonly serial = new KeyedSerial();

  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly connections: ConnectionManager,
    private readonly publisher: Publisher,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
    @Inject(MESSAGING_LOGGER) private readonly logger: Logger,
    private readonly consumers: HandlerConsumers,
  ) {}

  /**
   * Moves up to `limit` messages from `<queue>.dlq` back to the queue they failed in, with their
   * tries counted afresh; with `ids` (from browse), only those letters. Each is re-published with
   * a confirm before it leaves the dead-letter queue, so a failure midway duplicates at most one
   * message and loses none; the letters left keep their order. Only the messages there when the
   * replay starts are taken (with `ids`, among the first MAX_OFFSET): one that fails again comes
   * back behind them and waits for the next replay. A message whose queue no longer exists (e.g. a
   * broadcast handler's) stays where it is, and a warning counts them. Returns how many moved.
   */
  async replay(name: string, options: { limit?: number; ids?: readonly string[] } = {}): Promise<number> {
    const queue = renamed(this.options.queues, name);
    const limit = options.limit ?? Infinity;
    const wanted = options.ids === undefined ? undefined : checkIds(options.ids);
    const dlq = `${queue}.dlq`;
    let skipped = 0;
    let moved = 0;
    // Without ids, letters are taken from the head: nothing needs reading whole, nor putting back.
    await this.onLetters(queue, dlq, wanted ? MAX_OFFSET : Infinity, wanted !== undefined, {
      done: () => moved >= limit || wanted?.size === 0,
      visit: async (msg) => {
        if (moved >= limit || (wanted && !wanted.delete(deadLetterId(msg)))) return 'keep';
        try {
          // Only where the module put it: the queue this dead-letter queue belongs to. A header
          // naming another (x-original-queue) can be written by any producer.
          await this.republish(msg, queue);
        } catch (error) {
          if (!(error instanceof UnroutableError)) throw error;
          skipped++;
          return 'keep';
        }
        moved++;
        return 'take';
      },
    });
    if (skipped > 0) {
      this.logger.warn(`Replay of "${queue}": ${skipped} messages left in "${dlq}": their queue "${queue}" does not exist`);
    }
    return moved;
  }

  /**
   * Reads a page of `<queue>.dlq` without taking anything off it: `limit` letters (at most
   * MAX_PAGE_LIMIT, default 20) from position `offset` (at most MAX_OFFSET). The letters before
   * and on the page are held unacked while it is read, then put back in their order; the page is
   * what the queue held at that moment.
   */
  async browse(name: string, page: { offset?: number; limit?: number } = {}): Promise<DeadLetterPage> {
    const { offset, limit } = checkPage(page);
    const queue = renamed(this.options.queues, name);
    const dlq = `${queue}.dlq`;
    const letters: DeadLetter[] = [];
    const total = await this.onLetters(queue, dlq, offset + limit, true, {
      visit: async (msg, position) => {
        if (position >= offset && letters.length < limit) letters.push(deadLetterOf(msg, position));
        return 'keep';
      },
    });
    return { deadLetterQueue: dlq, total, offset, letters };
  }

  /**
   * Removes the letters with these ids (from browse) from `<queue>.dlq` for good, looking among
   * its first MAX_OFFSET letters; the others keep their order. Returns how many were removed
   * (fewer than asked when some were gone already).
   */
  async discard(name: string, ids: readonly string[]): Promise<number> {
    const wanted = checkIds(ids);
    const queue = renamed(this.options.queues, name);
    let removed = 0;
    await this.onLetters(queue, `${queue}.dlq`, MAX_OFFSET, true, {
      done: () => wanted.size === 0,
      visit: async (msg) => {
        if (!wanted.delete(deadLetterId(msg))) return 'keep';
        removed++;
        return 'take';
      },
    });
    if (removed > 0) this.logger.log(`Discarded ${removed} dead letters from "${queue}.dlq"`);
    return removed;
  }

  /**
   * Runs `visitor` over the letters of `dlq` from its head, one operation at a time per queue:
   * the first `needed` (all of them for Infinity), or, when it `leaves` letters, up to MAX_HELD of
   * a queue that must be read whole (see the class). A letter the visitor leaves that was put back
   * FRESH_COPY_AFTER_RETURNS times already is renewed: a confirmed copy at the tail replaces it,
   * after the scan; on a queue read whole, the letters read reach that count together, and their
   * copies keep their order behind any letter that arrived meanwhile. Returns how many
   * letters the queue held when it started; resolves once the letters left are back (a quorum
   * queue takes them back after the channel closed).
   */
  private onLetters(queue: string, dlq: string, needed: number, leaves: boolean, visitor: LetterVisitor): Promise<number> {
    const whole = leaves && this.readsWhole(queue);
    return this.serial.run(dlq, async () => {
      let count = 0;
      let removed = 0;
      const visit: LetterVisitor['visit'] = async (msg, position) => {
        const verdict = await visitor.visit(msg, position);
        if (verdict === 'take') removed++;
        return verdict === 'keep' && returnsOf(msg) >= FRESH_COPY_AFTER_RETURNS ? 'renew' : verdict;
      };
      // A copy as it is but for the broker's own delivery count, confirmed at the tail of `dlq`.
      const renew = async (msg: Message) => void (await this.publishCopy(msg, dlq, [HEADER_DELIVERY_COUNT]));
      try {
        await this.connections.publisher.withChannel(async (channel) => {
          count = await countMessages(channel, queue, dlq);
          const reading = Math.min(count, whole ? Math.max(needed, MAX_HELD) : needed);
          // What takes letters as it goes (a replay of everything) holds only those it leaves.
          const hold = Math.min(reading, MAX_HELD);
          await scanLetters(channel, dlq, { count: reading, hold }, whole ? { visit, renew } : { done: visitor.done, visit, renew });
          if (removed > 0) await confirmTaken(channel, dlq, removed);
        });
      } finally {
        // Also when the visitor failed: the next operation must find every letter back in place.
        if (count > removed) await this.untilBack(dlq, count - removed);
      }
      return count;
    });
  }

  /** Whether `queue`'s dead letters must be read whole: unless a handler of this app declares it classic. */
  private readsWhole(queue: string): boolean {
    return !this.consumers.definitions.some(
      (definition) => definition.baseQueue === queue && definition.queueArguments['x-queue-type'] !== 'quorum',
    );
  }

  /**
   * Waits (bounded) until `dlq` holds `letters` ready again, or as many as it can: what it had,
   * less what was taken. Best effort: a broker that cannot be asked has nothing to wait for, and
   * the operation's own outcome (or error) stands.
   */
  private async untilBack(dlq: string, letters: number): Promise<void> {
    const deadline = Date.now() + RETURN_TIMEOUT_MS;
    await this.connections.publisher
      .withChannel(async (channel) => {
        while ((await channel.checkQueue(dlq)).messageCount < letters && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })
      .catch(() => undefined);
  }

  private republish(msg: Message, target: string): Promise<string> {
    return this.publishCopy(msg, target, DEAD_LETTER_HEADERS);
  }

  /**
   * `msg` as it is but for the `without` headers, confirmed in `queue` (mandatory: a queue that is
   * gone rejects with UnroutableError). A letter of this module always has an id; one without gets
   * one here, and so a new letter id.
   */
  private publishCopy(msg: Message, queue: string, without: readonly string[]): Promise<string> {
    const headers = { ...msg.properties.headers };
    for (const name of without) delete headers[name];
    const messageId = msg.properties.messageId ?? `replay-${randomUUID()}`;
    return this.publisher.publish(
      { exchange: '', routingKey: queue, content: msg.content, properties: { ...msg.properties, headers, messageId, mandatory: true } },
      this.options.publishTimeoutMs,
    );
  }
}

/** Messages ready in the dead-letter queue now; a QueueNotFoundError naming it when there is none. */
async function countMessages(channel: TransportChannel, queue: string, dlq: string): Promise<number> {
  try {
    return (await channel.checkQueue(dlq)).messageCount;
  } catch (error) {
    if (isNotFound(error)) {
      throw new QueueNotFoundError(dlq, `"${queue}" has no dead letters to read or replay (${error.reason})`);
    }
    throw new MessagingError(`Cannot read the dead-letter queue "${dlq}": ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Resolves once RabbitMQ has handled the acks of the `taken` letters: its reply on their channel
 * comes after everything sent on it before. Rejects when the channel went first: an ack written
 * then may never have arrived, its letter being back in `dlq`, and a count of removed or replayed
 * letters must not claim what may not have happened.
 */
async function confirmTaken(channel: TransportChannel, dlq: string, taken: number): Promise<void> {
  try {
    await channel.checkQueue(dlq);
  } catch (error) {
    throw new ConnectionLostError(
      `${taken} letters were taken from "${dlq}", but its channel closed before RabbitMQ confirmed it: ` +
        'some may still be there (a replayed one then twice); look again',
      { cause: error },
    );
  }
}

/** How often a quorum queue's letter was put back, as its `x-delivery-count` header says (0 on a classic queue). */
function returnsOf(msg: Message): number {
  const count = own(msg.properties.headers ?? {}, HEADER_DELIVERY_COUNT);
  return typeof count === 'number' && Number.isFinite(count) ? count : 0;
}
