import { randomUUID } from 'node:crypto';
import type { Request } from 'express';

const PRINTABLE = /^[\x21-\x7e]{1,128}$/;

/**
 * The id of an HTTP request: the caller's x-request-id when it is a sane one (it ends up in logs
 * and message headers, so nothing long or unprintable), a fresh UUID otherwise.
 */
export function requestIdOf(req: Request): string {
  const header = req.headers['x-request-id'];
  return typeof header === 'string' && PRINTABLE.test(header) ? header : randomUUID();
}
