import { Inject, Injectable } from '@nestjs/common';
import { MESSAGING_OPTIONS } from '../messaging.constants';
import type { ResolvedMessagingOptions } from '../messaging.options';
import { ConnectionManager } from '../connection/connection.manager';
import { TopologyError } from '../messaging.errors';
import { isNotFound } from '../transport/transport.errors';

/**
 * Delayed messages wait in the broker, as retries do: a fanout exchange and a queue per (target
 * exchange, delay), the queue holding each message for the delay (`x-message-ttl`) and then
 * dead-lettering it into the target exchange with the routing key it was published with. No
 * broker plugin; a delayed message survives restarts of its sender. Declared on first use; the
 * declaration is remembered for the life of the app (a deleted one is declared again after the
 * next failed publish, see `forget`).
 */
@Injectable()
export class DelayQueues {
  private readonly declared = new Map<string, Promise<string>>();

  /** @internal */
  constructor(
    private readonly connections: ConnectionManager,
    @Inject(MESSAGING_OPTIONS) private readonly options: ResolvedMessagingOptions,
  ) {}

  /** The exchange to publish to so that the message reaches `exchange` after `delayMs`. */
  via(exchange: string, delayMs: number): Promise<string> {
    const name = delayExchangeName(exchange, delayMs);
    let declared = this.declared.get(name);
    if (!declared) {
      declared = this.declare(name, exchange, delayMs);
      this.declared.set(name, declared);
      declared.catch(() => this.declared.delete(name));
    }
    return declared;
  }

  /** With `declare: false` an operator made it (see the README, "Topology"): checked, not declared. */
  private async check(name: string): Promise<string> {
    try {
      await this.connections.publisher.withChannel((channel) => channel.checkExchange(name));
      return name;
    } catch (error) {
      throw new TopologyError(`"declare: false", and the delay exchange "${name}" does not exist: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Whether a queue exists now (a passive check on a channel of its own: a 404 closes it). */
  async queueExists(queue: string): Promise<boolean> {
    try {
      await this.connections.publisher.withChannel((channel) => channel.checkQueue(queue));
      return true;
    } catch (error) {
      if (isNotFound(error)) return false;
      throw error;
    }
  }

  /** Its delay exchange went missing: declared again on next use. */
  forget(exchange: string, delayMs: number): void {
    this.declared.delete(delayExchangeName(exchange, delayMs));
  }

  private async declare(name: string, exchange: string, delayMs: number): Promise<string> {
    if (!this.options.declare) return this.check(name);
    try {
      await this.connections.publisher.withChannel(async (channel) => {
        await channel.assertExchange(name, 'fanout', { durable: true });
        await channel.assertQueue(name, { durable: true, arguments: { 'x-message-ttl': delayMs, 'x-dead-letter-exchange': exchange } });
        await channel.bindQueue(name, name, '');
      });
      return name;
    } catch (error) {
      throw new TopologyError(`RabbitMQ refused to declare the delay queue "${name}": ${(error as Error).message}`, { cause: error });
    }
  }
}

/** `messaging.delay.<ms>ms.<exchange>`; `(default)` names the default exchange (a send to a queue). */
export function delayExchangeName(exchange: string, delayMs: number): string {
  return `messaging.delay.${delayMs}ms.${exchange || '(default)'}`;
}
