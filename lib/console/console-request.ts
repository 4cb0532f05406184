import type { IncomingHttpHeaders } from 'node:http';

/** What the console reads of an HTTP request (Express's, which Nest's default adapter gives). */
export interface ConsoleRequest {
  headers: IncomingHttpHeaders;
  /** The path as the client asked for it, global prefix included (Express). */
  originalUrl?: string;
  url?: string;
  /** Came over HTTPS (Express; behind a proxy, with its `trust proxy` setting). */
  secure?: boolean;
  /** The parsed body of a POST: a form's fields, or JSON. */
  body?: unknown;
}

/**
 * Where the console is mounted as the browser sees it: the request's path without the route's
 * own `suffix` (e.g. `/dead-letters`). Links and redirects start from it, so they hold under a
 * global prefix or a proxy that adds one.
 */
export function mountPath(request: ConsoleRequest, suffix: string): string {
  // Backslashes and doubled slashes made single: a browser reads a redirect to `//host` or `/\host` as another site.
  const path = (request.originalUrl ?? request.url ?? '/')
    .split('?')[0]
    .replace(/[\\/]+/g, '/')
    .replace(/\/$/, '');
  // Nest's routes match without regard to case.
  return path.toLowerCase().endsWith(suffix) ? path.slice(0, path.length - suffix.length) : path;
}

/** A field of a form, JSON body or query, its own (never one reached through a prototype), whatever its type. */
export function ownField(fields: unknown, name: string): unknown {
  if (typeof fields !== 'object' || fields === null || !Object.hasOwn(fields, name)) return undefined;
  return (fields as Record<string, unknown>)[name];
}

/** A field of a form, JSON body or query that is a string; undefined for anything else. */
export function bodyField(fields: unknown, name: string): string | undefined {
  const value = ownField(fields, name);
  return typeof value === 'string' ? value : undefined;
}
