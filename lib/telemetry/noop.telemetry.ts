import type { Telemetry } from './telemetry.interface';

/** The default: nothing records, nothing is allocated, no clock is read. */
export const NOOP_TELEMETRY: Telemetry = {
  consume: (_queue, _msg, handle, arg) => handle(arg),
  handler: (_queue, call, payload, context) => call(payload, context),
  settled: () => undefined,
  publishing: (_message, settle) => settle,
  rpcStarted: () => 0,
  rpcEnded: () => undefined,
  reconnected: () => undefined,
  incident: () => undefined,
  traceId: () => undefined,
};
