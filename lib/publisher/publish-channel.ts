import type { Logger } from '@nestjs/common';
import type { ManagedConnection } from '../connection/managed-connection';
import { maskUrl } from '../util/url';
import type { ChannelClosedError } from '../transport/transport.errors';
import type { ConfirmOutcome, Message, TransportChannel } from '../transport/transport.interface';
import { within } from '../util/within';
import type { PublishJob } from '../transport/outgoing';
import { ReturnMatcher } from './return-matcher';

/** How long closing a channel may take: a blocked connection (resource alarm) never answers. */
const CHANNEL_CLOSE_TIMEOUT_MS = 2_000;

/** One channel and what belongs to it alone. */
export class ChannelSlot {
  readonly returns = new ReturnMatcher();
  /** Publishes that were unconfirmed when the channel went; written again once it has closed. */
  readonly orphans: PublishJob[] = [];
  /** Why the broker closed it, if it did. */
  closeError?: ChannelClosedError;
  closed = false;
  /** Where the channel tells each publish's confirm: one function per channel, none per publish. */
  readonly confirmed: (job: PublishJob, outcome: ConfirmOutcome) => void;

  constructor(
    readonly channel: TransportChannel,
    confirmed: (slot: ChannelSlot, job: PublishJob, outcome: ConfirmOutcome) => void,
  ) {
    this.confirmed = (job, outcome) => confirmed(this, job, outcome);
  }
}

/** What a publisher hears from its channel. */
export interface ChannelEvents {
  opened(slot: ChannelSlot): void;
  /** The broker's answer to a publish written on this channel. */
  confirmed(slot: ChannelSlot, job: PublishJob, outcome: ConfirmOutcome): void;
  /** A message the broker returned unroutable on this channel. */
  returned(slot: ChannelSlot, message: Message): void;
  /** The socket takes writes again. */
  drained(): void;
  /** The channel is gone; every one of its confirms has been answered. */
  closed(slot: ChannelSlot): void;
}

/**
 * The channel a publisher writes to: opened whenever the connection comes (back), replaced right
 * away when the broker closes it but the connection stays, and never written to once it is going.
 */
export class PublishChannel {
  private current?: ChannelSlot;
  /** False after a write the socket could not take at once, until it drains. */
  writable = true;
  private stopped = false;

  constructor(
    private readonly connection: ManagedConnection,
    private readonly confirms: boolean,
    /** Names the channel in logs. */
    private readonly role: string,
    private readonly logger: Logger,
    private readonly events: ChannelEvents,
  ) {
    connection.on('connected', () => void this.open());
  }

  /** The channel to write to now, if any. */
  get slot(): ChannelSlot | undefined {
    return this.current;
  }

  async open(): Promise<void> {
    if (this.stopped) return;
    let channel: TransportChannel;
    try {
      channel = await this.connection.createChannel({ confirms: this.confirms });
    } catch (error) {
      // The connection went down meanwhile; its `connected` event brings us back.
      this.logger.debug?.(`Cannot open the ${this.role} channel: ${(error as Error).message}`);
      return;
    }
    const slot = new ChannelSlot(channel, this.events.confirmed);
    channel.on('return', (message: Message) => this.events.returned(slot, message));
    channel.on('drain', () => {
      if (this.current !== slot) return;
      this.writable = true;
      this.events.drained();
    });
    channel.on('close', (error?: ChannelClosedError) => this.onClosed(slot, error));
    if (this.stopped) {
      await closeWithin(channel);
      return;
    }
    this.current = slot;
    this.writable = true;
    this.events.opened(slot);
  }

  /** Stops writing to a channel that is going away (its close event has not come yet). */
  retire(slot: ChannelSlot): void {
    if (this.current === slot) this.current = undefined;
  }

  /** No channel from now on; the open one closes (the connection is not ours). */
  async close(): Promise<void> {
    this.stopped = true;
    const slot = this.current;
    this.current = undefined;
    if (slot) await closeWithin(slot.channel);
  }

  private onClosed(slot: ChannelSlot, error?: ChannelClosedError): void {
    if (slot.closed) return;
    slot.closed = true;
    if (error) {
      slot.closeError = error;
      this.logger.warn(`The ${this.role} channel was closed by RabbitMQ: ${maskUrl(error.message)}`);
    }
    this.retire(slot);
    this.events.closed(slot);
    // A channel-level error (e.g. 404 on a missing exchange) leaves the connection up: reopen now.
    if (this.connection.current && !this.stopped) void this.open();
  }
}

/** Closes a channel, giving up after a while: a blocked connection never answers the close. */
async function closeWithin(channel: TransportChannel): Promise<void> {
  await within(
    channel.close().catch(() => undefined),
    CHANNEL_CLOSE_TIMEOUT_MS,
  );
}
