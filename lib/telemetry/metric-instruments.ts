import type { ConnectionRole } from '../interfaces/connection-role.interface';
import type { Incident, PublishResult, RpcResult, SettleOutcome } from './telemetry.interface';

/** The instruments of METRICS and INCIDENT_METRICS on one metrics library; MetricsTelemetry decides when each moves. */
export interface MetricInstruments {
  consumed(queue: string, outcome: SettleOutcome): void;
  handlerDuration(queue: string, seconds: number): void;
  inFlight(queue: string, delta: number): void;
  published(exchange: string, result: PublishResult): void;
  rpcDuration(queue: string, result: RpcResult, seconds: number): void;
  rpcPending(delta: number): void;
  reconnected(role: ConnectionRole): void;
  incident(incident: Incident, subject: string): void;
}
