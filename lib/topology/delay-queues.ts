import { Inject, Injectable } from '@nestjs/common';
import { MESSAGING_OPTIONS } from '../messaging.constants';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { ConnectionManager } from '../connection/connection-manager';
import { PublishTimeoutError, TopologyError } from '../messaging.errors';
import { isNotFound } from '../transport/transport.errors';
import { withinOrThrow } from '../util/within';
import { RecentDeclarations } from './recent-declarations';

/**
 * A delay queue is declared again (renewing its `x-expires` lease) by the first send through it
 * after this long; a queue in use is so never older than this since its last declaration.
 */
export const DELAY_QUEUE_RENEW_MS = 60_000;
/**
 * How much longer than its delay a delay queue lives unused. RabbitMQ deletes an expiring queue
 * with its messages, and a publish is no use of it: the last message sent through it must have
 * been dead-lettered before then. It covers the renewal period, the send's wait for its confirm
 * and the broker's lag in dead-lettering. Never changed: a queue redeclared with another
 * `x-expires` is refused (406 PRECONDITION_FAILED) for every app already using it.
 */
export const DELAY_QUEUE_MARGIN_MS = 30 * 60_000;
/** Declarations remembered at most (each is fresh for DELAY_QUEUE_RENEW_MS anyway). */
const REMEMBERED = 1_000;

/**
 * Delayed messages wait in the broker, as retries do: a fanout exchange and a queue per (target
 * exchange, delay), the queue holding each message for the delay (`x-message-ttl`) and then
 * dead-lettering it into the target exchange with the routing key it was published with. No
 * broker plugin; a delayed message survives restarts of its sender.
 *
 * Bounded: the queue expires when unused for its delay plus DELAY_QUEUE_MARGIN_MS, and its
 * exchange (auto-delete) goes with its binding; each use declares it again once it is
 * DELAY_QUEUE_RENEW_MS old. A publish through it is mandatory (see `lost`): a queue deleted
 * behind our back never swallows a message.
 */
@Injectable()
export class DelayQueues {
  private readonly declared = new RecentDeclarations<string>(DELAY_QUEUE_RENEW_MS, REMEMBERED);

  /** @internal */
  constructor(
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: Pick<ResolvedMessagingOptions, 'declare'>,
  ) {}

  /**
   * The exchange to publish to so that the message reaches `exchange` after `delayMs`; rejects
   * with PublishTimeoutError when its declaration is not done by `deadline` (a blocked or stalled
   * publisher connection answers nothing).
   */
  via(exchange: string, delayMs: number, deadline = Infinity): Promise<string> {
    const name = delayExchangeName(exchange, delayMs);
    const declared = this.declared.get(name, () =>
      this.options.declare ? this.declare(name, exchange, delayMs) : this.check(name, exchange, delayMs),
    );
    return this.inTime(declared, deadline, `Declaring the delay queue "${name}"`);
  }

  /** Whether a queue exists now (a passive check on a channel of its own: a 404 closes it), by `deadline`. */
  queueExists(queue: string, deadline = Infinity): Promise<boolean> {
    const exists = this.connections.publisher
      .withChannel((channel) => channel.checkQueue(queue))
      .then(
        () => true,
        (error: unknown) => {
          if (isNotFound(error)) return false;
          throw error;
        },
      );
    return this.inTime(exists, deadline, `Checking that the queue "${queue}" exists`);
  }

  /** Its delay exchange or queue went missing: declared again on next use. */
  forget(exchange: string, delayMs: number): void {
    this.declared.forget(delayExchangeName(exchange, delayMs));
  }

  /** What a delayed publish returned unroutable by the delay exchange `name` (its queue is gone) fails with. */
  lost(name: string): TopologyError {
    const why = this.options.declare
      ? 'was deleted again as soon as it was declared'
      : 'does not exist ("declare: false": an operator makes it)';
    return new TopologyError(`The delay queue "${name}" ${why}: the message was not sent`);
  }

  /** With `declare: false` an operator made it (see docs/topology.md, "declare: false"): checked, not declared. */
  private async check(name: string, exchange: string, delayMs: number): Promise<string> {
    const exists = (candidate: string) =>
      this.connections.publisher.withChannel((channel) => channel.checkExchange(candidate)).then(() => candidate);
    try {
      return await exists(name);
    } catch (error) {
      // The name delay exchanges had before they expired, which an operator may have made.
      const legacy = await exists(legacyDelayExchangeName(exchange, delayMs)).catch(() => undefined);
      if (legacy) return legacy;
      throw new TopologyError(`"declare: false", and the delay exchange "${name}" does not exist: ${(error as Error).message}`, {
        cause: error,
      });
    }
  }

  private async declare(name: string, exchange: string, delayMs: number): Promise<string> {
    try {
      await this.connections.publisher.withChannel(async (channel) => {
        // The queue first: declaring it renews its lease, so it cannot expire (taking the
        // auto-delete exchange with it) between the next two steps.
        // Classic, named so for a vhost whose default type is quorum: a declare does not renew a
        // quorum queue's x-expires, which would expire with the delayed messages in it.
        await channel.assertQueue(name, {
          durable: true,
          arguments: {
            'x-queue-type': 'classic',
            'x-message-ttl': delayMs,
            'x-dead-letter-exchange': exchange,
            'x-expires': delayQueueExpiresMs(delayMs),
          },
        });
        await channel.assertExchange(name, 'fanout', { durable: true, autoDelete: true });
        await channel.bindQueue(name, name, '');
      });
      return name;
    } catch (error) {
      throw new TopologyError(`RabbitMQ refused to declare the delay queue "${name}": ${(error as Error).message}`, { cause: error });
    }
  }

  /** `work`, or PublishTimeoutError once `deadline` passed: no step of a send waits longer than the send. */
  private async inTime<T>(work: Promise<T>, deadline: number, what: string): Promise<T> {
    if (deadline === Infinity) return work;
    return withinOrThrow(work, deadline - Date.now(), () => {
      const blocked = this.connections.publisher.blockedReason;
      return new PublishTimeoutError(
        `${what} took longer than the send's timeout${blocked ? ` (RabbitMQ blocks publishing: ${blocked})` : ''}; nothing was sent`,
      );
    });
  }
}

/**
 * `messaging.delayed.<ms>ms.<exchange>`; `(default)` names the default exchange (a send to a
 * queue). Also the name of its queue.
 */
export function delayExchangeName(exchange: string, delayMs: number): string {
  return `messaging.delayed.${delayMs}ms.${exchange || '(default)'}`;
}

/**
 * The name of earlier versions, whose queues never expired. The expiring ones have a new name since
 * RabbitMQ refuses to redeclare a queue with an argument (`x-expires`) it did not have; queues of
 * the old name are left alone (they empty themselves into their target as their delay passes).
 */
function legacyDelayExchangeName(exchange: string, delayMs: number): string {
  return `messaging.delay.${delayMs}ms.${exchange || '(default)'}`;
}

/** The `x-expires` of the delay queue of `delayMs`: a pure function of the delay, the same for every app that declares it. */
export function delayQueueExpiresMs(delayMs: number): number {
  return delayMs + DELAY_QUEUE_MARGIN_MS;
}
