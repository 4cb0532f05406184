import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { Outgoing, Settle } from '../transport/outgoing';
import type { Message } from '../transport/transport.interface';

/** The user's handler method as the consumer calls it. */
export type HandlerCall = (payload: unknown, context: MessageContext) => unknown;

/** How a delivery ended: acked (handled or answered), retried later, dead-lettered, or back in its queue. */
export type SettleOutcome = 'acked' | 'retried' | 'dead_lettered' | 'requeued';

/** The broker's verdict on one publish. */
export type PublishResult = 'confirmed' | 'returned' | 'nacked' | 'failed';

/** How a request (or a gather) ended for its caller. */
export type RpcResult = 'answered' | 'timed_out' | 'failed';

/**
 * Something the module also logs a warning about, counted by its subject:
 * - `outboxParked`: an outbox row was parked, its exchange refused by the broker (subject: the exchange);
 * - `idempotencyStoreFailure`: the idempotency store failed or did not answer a claim, and the
 *   message went back to its queue (subject: the queue);
 * - `idempotencyLeaseWarning`: a handler runs on while its claim is not kept: past its lease with a
 *   store that cannot renew, a renewal that failed or found the claim gone (subject: the queue).
 */
export type Incident = 'outboxParked' | 'idempotencyStoreFailure' | 'idempotencyLeaseWarning';

/**
 * What the module reports at the points where a message changes state, for metrics and traces.
 * One interface (the shape of BullMQ's `Telemetry`), reached through `options.telemetry`; the
 * default does nothing, so with no metrics and no tracer a message costs no clock read and no
 * allocation here. Implementations never throw into the message path.
 */
export interface Telemetry {
  /**
   * A delivery reached the consumer of `queue`: `handle(arg)` decodes it, runs the handler and
   * settles it, in the sender's trace when tracing. Returns what `handle` returns; a returned
   * promise settles when the delivery is done.
   */
  consume<A, R>(queue: string, msg: Message, handle: (arg: A) => R, arg: A): R;
  /**
   * Calls the handler, `call(payload, context)`, timing it and recording its failure. Returns
   * what it returns (a promise that settles when the handler is done, for an async one).
   */
  handler(queue: string, call: HandlerCall, payload: unknown, context: MessageContext): unknown;
  /** The delivery's outcome is recorded: its copy or reply is confirmed and its ack is on its way. */
  settled(queue: string, outcome: SettleOutcome): void;
  /**
   * A message is submitted for publishing from the current context. Returns what to call with
   * the broker's verdict instead of `settle` (`settle` itself when nothing records verdicts).
   */
  publishing(message: Outgoing, settle: Settle): Settle;
  /** A request or gather starts waiting; returns the clock reading `rpcEnded` measures from (0 when nothing measures). */
  rpcStarted(): number;
  rpcEnded(target: string, startedAt: number, result: RpcResult): void;
  /** A connection came back after it was lost. */
  reconnected(role: ConnectionRole): void;
  /** An incident is logged as a warning; `subject` is what it concerns (see Incident). */
  incident(incident: Incident, subject: string): void;
  /** The trace id of the active span, when tracing. */
  traceId(): string | undefined;
}
