import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { MessageContext } from '../interfaces/message-context.interface';
import { PublishNackedError, UnroutableError } from '../messaging.errors';
import type { Outgoing, Settle } from '../transport/outgoing';
import type { Message } from '../transport/transport.interface';
import type { MetricInstruments } from './metric-instruments';
import { isPromiseLike } from '../util/promise-like';
import type { HandlerCall, Incident, PublishResult, RpcResult, SettleOutcome, Telemetry } from './telemetry.interface';

/** Counts and times what the module reports into one set of instruments (Prometheus or OpenTelemetry). */
export class MetricsTelemetry implements Telemetry {
  constructor(private readonly instruments: MetricInstruments) {}

  consume<A, R>(queue: string, _msg: Message, handle: (arg: A) => R, arg: A): R {
    const { instruments } = this;
    instruments.inFlight(queue, 1);
    let result: R;
    try {
      result = handle(arg);
    } catch (error) {
      instruments.inFlight(queue, -1);
      throw error;
    }
    if (!isPromiseLike(result)) {
      instruments.inFlight(queue, -1);
      return result;
    }
    const done = () => instruments.inFlight(queue, -1);
    result.then(done, done);
    return result;
  }

  handler(queue: string, call: HandlerCall, payload: unknown, context: MessageContext): unknown {
    const startedAt = performance.now();
    const done = () => this.instruments.handlerDuration(queue, (performance.now() - startedAt) / 1000);
    let result: unknown;
    try {
      result = call(payload, context);
    } catch (error) {
      done();
      throw error;
    }
    if (isPromiseLike(result)) return Promise.resolve(result).finally(done);
    done();
    return result;
  }

  settled(queue: string, outcome: SettleOutcome): void {
    this.instruments.consumed(queue, outcome);
  }

  publishing(message: Outgoing, settle: Settle): Settle {
    return (error) => {
      this.instruments.published(message.exchange, verdictOf(error));
      settle(error);
    };
  }

  rpcStarted(): number {
    this.instruments.rpcPending(1);
    return performance.now();
  }

  rpcEnded(target: string, startedAt: number, result: RpcResult): void {
    this.instruments.rpcPending(-1);
    this.instruments.rpcDuration(target, result, (performance.now() - startedAt) / 1000);
  }

  reconnected(role: ConnectionRole): void {
    this.instruments.reconnected(role);
  }

  incident(incident: Incident, subject: string): void {
    this.instruments.incident(incident, subject);
  }

  traceId(): undefined {
    return undefined;
  }
}

function verdictOf(error: Error | undefined): PublishResult {
  if (!error) return 'confirmed';
  if (error instanceof UnroutableError) return 'returned';
  if (error instanceof PublishNackedError) return 'nacked';
  return 'failed';
}
