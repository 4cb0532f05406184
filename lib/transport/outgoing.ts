import type { EncodeError } from '../messaging.errors';
import type { PublishProperties as TransportProperties } from './transport.interface';

export type PublishProperties = TransportProperties & { messageId: string };

/** A message on its way out: a payload encoded only when it is written, or bytes as they are. */
export interface Outgoing {
  exchange: string;
  routingKey: string;
  payload?: unknown;
  content?: Buffer;
  properties: PublishProperties;
}

/** The broker's verdict on one publish: undefined once confirmed, or why it failed. */
export type Settle = (error?: Error) => void;

/** One publish from submission to verdict. */
export interface PublishJob {
  message: Outgoing;
  deadline: number;
  settle: Settle;
  /** Submission order, which a republish after a lost channel keeps. */
  seq: number;
  /** Its message id, when it is mandatory on a confirm channel: what a basic.return is matched by. */
  returnKey?: string;
  /** The broker returned it unroutable on its current channel; its confirm follows. */
  returned: boolean;
  /** Its place in the confirm window while it awaits its confirm (see SlotSet). */
  windowSlot?: number;
  /** Its body is being compressed off the event loop; it waits at the head of the queue meanwhile. */
  encoding?: boolean;
  /** Its payload could not be encoded: it fails when its turn comes. */
  unencodable?: EncodeError;
}

/** What a message is for, in errors and logs: its exchange, or its queue when sent to one directly. */
export function target(message: Outgoing): string {
  return message.exchange || message.routingKey;
}
