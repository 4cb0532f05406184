/**
 * The HTTP status an error carries, if any: a Nest HttpException's `getStatus()` (read by its public
 * method, not its class, so the delivery runtime needs no Nest import), or its cause's (a pipe's
 * refusal is wrapped in MessageRejectedError). Only a real status, 100 to 599.
 */
export function errorStatus(error: unknown, depth = 0): number | undefined {
  if (typeof error !== 'object' || error === null || depth > 2) return undefined;
  const getStatus = (error as { getStatus?: unknown }).getStatus;
  if (typeof getStatus === 'function') {
    const status: unknown = getStatus.call(error);
    if (isHttpStatus(status)) return status;
  }
  return errorStatus((error as { cause?: unknown }).cause, depth + 1);
}

/** A whole number from 100 to 599: what an error reply's `x-error-status` may say (it comes from another service). */
export function isHttpStatus(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 100 && value <= 599;
}
