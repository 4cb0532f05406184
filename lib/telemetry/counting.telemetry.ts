import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { Outgoing, Settle } from '../transport/outgoing';
import type { Message } from '../transport/transport.interface';
import type { OutcomeCounters } from './outcome-counters';
import type { HandlerCall, Incident, RpcResult, SettleOutcome, Telemetry } from './telemetry.interface';

/** Another telemetry, with each settled delivery also counted into OutcomeCounters: one map look-up per message. */
export class CountingTelemetry implements Telemetry {
  constructor(
    private readonly inner: Telemetry,
    private readonly counters: OutcomeCounters,
  ) {}

  consume<A, R>(queue: string, msg: Message, handle: (arg: A) => R, arg: A): R {
    return this.inner.consume(queue, msg, handle, arg);
  }

  handler(queue: string, call: HandlerCall, payload: unknown, context: MessageContext): unknown {
    return this.inner.handler(queue, call, payload, context);
  }

  settled(queue: string, outcome: SettleOutcome): void {
    this.counters.record(queue, outcome);
    this.inner.settled(queue, outcome);
  }

  publishing(message: Outgoing, settle: Settle): Settle {
    return this.inner.publishing(message, settle);
  }

  rpcStarted(): number {
    return this.inner.rpcStarted();
  }

  rpcEnded(target: string, startedAt: number, result: RpcResult): void {
    this.inner.rpcEnded(target, startedAt, result);
  }

  reconnected(role: ConnectionRole): void {
    this.inner.reconnected(role);
  }

  incident(incident: Incident, subject: string): void {
    this.inner.incident(incident, subject);
  }

  traceId(): string | undefined {
    return this.inner.traceId();
  }
}
