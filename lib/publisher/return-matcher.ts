import type { Message } from '../transport/transport.interface';
import type { PublishJob } from '../transport/outgoing';
import { ProbeMap } from '../util/probe-map';

/**
 * Matches a basic.return to the mandatory publish it concerns, on one channel. A return carries
 * no publish sequence number and RabbitMQ may coalesce the confirms of several publishes into one
 * ack, so a return can only be matched exactly while one publish per message id is in flight: a
 * second one with the same id waits for the first's confirm. The id alone is the key (not with the
 * exchange and routing key): it is unique but for deliberate re-sends, and hashing one string that
 * already exists costs less per publish than building a composite key. A ProbeMap, not a Map: one
 * entry comes and goes per publish (see ProbeMap for what a Map costs then).
 */
export class ReturnMatcher {
  private readonly inFlight = new ProbeMap<PublishJob>();

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
    const id = message.properties.messageId;
    const job = typeof id === 'string' ? this.inFlight.get(id) : undefined;
    if (job && job.message.exchange === message.fields.exchange && job.message.routingKey === message.fields.routingKey)
      job.returned = true;
  }

  /** The job's confirm came: no return can concern it any more. */
  confirmed(job: PublishJob): void {
    if (job.returnKey !== undefined && this.inFlight.get(job.returnKey) === job) this.inFlight.delete(job.returnKey);
  }
}
