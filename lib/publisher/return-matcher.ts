import type { Message } from '../transport/transport.interface';
import type { Outgoing, PublishJob } from './outgoing';

/**
 * Matches a basic.return to the mandatory publish it concerns, on one channel. A return carries
 * no publish sequence number and RabbitMQ may coalesce the confirms of several publishes into one
 * ack, so a return can only be matched exactly while one publish per key (exchange, routing key,
 * message id) is in flight: a second one with the same key waits for the first's confirm.
 */
export class ReturnMatcher {
  private readonly inFlight = new Map<string, PublishJob>();

  /** A mandatory publish whose twin (same key) awaits its confirm here must wait for it. */
  waitsForTwin(job: PublishJob): boolean {
    return job.returnKey !== undefined && this.inFlight.has(job.returnKey);
  }

  /** The job was written: a return with its key from now on is its (returns come in a later tick). */
  written(job: PublishJob): void {
    job.returned = false;
    if (job.returnKey !== undefined) this.inFlight.set(job.returnKey, job);
  }

  returned(message: Message): void {
    const job = this.inFlight.get(keyOf(message.fields.exchange, message.fields.routingKey, message.properties.messageId));
    if (job) job.returned = true;
  }

  /** The job's confirm came: no return can concern it any more. */
  confirmed(job: PublishJob): void {
    if (job.returnKey !== undefined && this.inFlight.get(job.returnKey) === job) this.inFlight.delete(job.returnKey);
  }
}

/** What a basic.return names a publish by. */
export function returnKeyOf(message: Outgoing): string {
  return keyOf(message.exchange, message.routingKey, message.properties.messageId);
}

function keyOf(exchange: string, routingKey: string, messageId: unknown): string {
  return `${exchange}\n${routingKey}\n${String(messageId)}`;
}
