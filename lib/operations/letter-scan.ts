import { ConnectionLostError } from '../messaging.errors';
import type { Message, TransportChannel } from '../transport/transport.interface';

/** A scan ends when no letter came for this long (someone else took the rest, or the queue emptied). */
const IDLE_MS = 5_000;

/**
 * What a scan does with each letter it reads: leave it in its place, take it off the queue, or
 * renew it (replace it by a copy at the tail, once nothing more is read).
 */
export interface LetterVisitor {
  /** Asked before each read: true ends the scan there. */
  done?(): boolean;
  /** `position` counts from 0 at the head; `take` acks the letter. Throwing ends the scan, leaving the letter. */
  visit(msg: Message, position: number): Promise<'keep' | 'take' | 'renew'>;
  /** Puts a copy of a letter `visit` renewed at the tail, confirmed: the letter is acked after. */
  renew?(msg: Message): Promise<void>;
}

/**
 * Reads up to `count` letters of `queue` from its head, in order, as a consumer allowed to hold
 * `hold` of them unacked; returns how many the visitor took. The letters left go back when the
 * caller closes the channel, in the order they were read: a classic queue puts each at its
 * position, the in-memory broker at the head, a quorum queue at the head behind the letters it took
 * back before and still holds there (which is why DeadLetters reads a quorum queue whole). Not
 * basic.get and nack: RabbitMQ 3 puts a quorum queue's nacked letters at its tail, and a channel
 * closed after basic.get returns them out of order (both seen on RabbitMQ 3.10). Rejects with
 * ConnectionLostError, at once, when the channel closes before the letters it needs came.
 */
export async function scanLetters(
  channel: TransportChannel,
  queue: string,
  { count, hold }: { count: number; hold: number },
  visitor: LetterVisitor,
): Promise<number> {
  if (count === 0 || visitor.done?.()) return 0;
  const inbox = new Inbox();
  // The channel gone (its connection lost, the app closing), what it held is back in the queue and
  // nothing more comes: the scan must neither wait out IDLE_MS nor end as if it had read them all.
  let closed: { error?: Error } | undefined;
  channel.once('close', (error?: Error) => {
    closed = { error };
    inbox.push(null);
  });
  // A prefetch of 0 would mean no limit.
  await channel.prefetch(Math.max(1, hold));
  const { consumerTag } = await channel.consume(queue, (msg) => inbox.push(msg), { noAck: false });
  let taken = 0;
  const renewed: Message[] = [];
  // Holding `hold` letters, the consumer gets no more: the scan ends there rather than idling out.
  for (let position = 0; position < count && position - taken < hold && !visitor.done?.(); position++) {
    const msg = await inbox.next(IDLE_MS);
    if (!msg && closed) {
      throw new ConnectionLostError(
        `Reading "${queue}" stopped after ${position} of ${count} letters: its channel closed; the letters it held are back in the queue`,
        { cause: closed.error },
      );
    }
    if (!msg) break;
    const verdict = await visitor.visit(msg, position);
    if (verdict === 'take') {
      channel.ack(msg);
      taken++;
    } else if (verdict === 'renew') renewed.push(msg);
  }
  if (renewed.length > 0) {
    // Cancelled first: acking frees the consumer's credit, and it must not be handed the copies.
    await channel.cancel(consumerTag);
    for (const msg of renewed) {
      await visitor.renew!(msg);
      channel.ack(msg);
    }
  }
  return taken;
}

/** Deliveries in the order they came, each awaited in turn; none after the consumer was cancelled. */
class Inbox {
  private readonly waiting: Message[] = [];
  private ended = false;
  private wake?: () => void;

  push(msg: Message | null): void {
    if (msg) this.waiting.push(msg);
    else this.ended = true;
    this.wake?.();
  }

  /** The next delivery, or undefined once none came for `idleMs` or the broker cancelled the consumer. */
  async next(idleMs: number): Promise<Message | undefined> {
    if (this.waiting.length === 0 && !this.ended) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        timer = setTimeout(resolve, idleMs);
      });
      clearTimeout(timer);
      this.wake = undefined;
    }
    return this.waiting.shift();
  }
}
