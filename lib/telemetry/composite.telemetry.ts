import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import type { Outgoing, Settle } from '../transport/outgoing';
import type { Message } from '../transport/transport.interface';
import type { HandlerCall, Incident, RpcResult, SettleOutcome, Telemetry } from './telemetry.interface';

/** Several telemetries as one (e.g. Prometheus metrics and tracing), the first outermost. */
export class CompositeTelemetry implements Telemetry {
  constructor(private readonly parts: Telemetry[]) {}

  consume<A, R>(queue: string, msg: Message, handle: (arg: A) => R, arg: A): R {
    // The first part runs outermost: tracing first, so metrics count inside the consumer span.
    const run = (index: number): R => (index === this.parts.length ? handle(arg) : this.parts[index].consume(queue, msg, run, index + 1));
    return run(0);
  }

  handler(queue: string, call: HandlerCall, payload: unknown, context: MessageContext): unknown {
    const run = (index: number): HandlerCall =>
      index === this.parts.length ? call : (p, c) => this.parts[index].handler(queue, run(index + 1), p, c);
    return run(0)(payload, context);
  }

  settled(queue: string, outcome: SettleOutcome): void {
    for (const part of this.parts) part.settled(queue, outcome);
  }

  publishing(message: Outgoing, settle: Settle): Settle {
    return this.parts.reduceRight((next, part) => part.publishing(message, next), settle);
  }

  rpcStarted(): number {
    for (const part of this.parts) part.rpcStarted();
    return performance.now();
  }

  rpcEnded(target: string, startedAt: number, result: RpcResult): void {
    for (const part of this.parts) part.rpcEnded(target, startedAt, result);
  }

  reconnected(role: ConnectionRole): void {
    for (const part of this.parts) part.reconnected(role);
  }

  incident(incident: Incident, subject: string): void {
    for (const part of this.parts) part.incident(incident, subject);
  }

  traceId(): string | undefined {
    for (const part of this.parts) {
      const id = part.traceId();
      if (id !== undefined) return id;
    }
    return undefined;
  }
}
