import { DecodeError, RpcRemoteError } from '../messaging.errors';

/**
 * The wire format of Nest's RMQ transport (`@nestjs/microservices`, `Transport.RMQ`), for handlers
 * and calls with `format: 'nest-rmq'`: JSON bodies, a request `{ pattern, data, id }` (its `id` is
 * also the AMQP correlation id, its reply address `replyTo`), an event `{ pattern, data }`, and
 * replies `{ err, response, isDisposed }`. Pure functions: reading and writing those bodies.
 */

/** A Nest message pattern: a string, or an object (`{ cmd: 'sum' }`). */
export type NestPattern = string | number | Record<string, unknown>;

/** What a Nest ServerRMQ answers when no @MessagePattern takes the pattern; ClientRMQ's caller sees it as the error. */
export const NEST_NO_MESSAGE_HANDLER = 'There is no matching message handler defined in the remote service.';

/**
 * A pattern as Nest routes it (its `transformPatternToRoute`): a string or number as it is, an
 * object as JSON with its keys sorted at every depth, so `{ b: 1, a: 'x' }` and `{ a: 'x', b: 1 }`
 * are one pattern.
 */
export function nestRoute(pattern: unknown): string {
  if (typeof pattern === 'string' || typeof pattern === 'number') return String(pattern);
  if (typeof pattern !== 'object' || pattern === null) {
    throw new DecodeError(`A Nest RMQ pattern is a string, a number or an object (got ${pattern === null ? 'null' : typeof pattern})`);
  }
  const keys = Object.keys(pattern).sort((a, b) => a.localeCompare(b));
  const parts = keys.map((key) => {
    const value = (pattern as Record<string, unknown>)[key];
    const route = typeof value === 'object' && value !== null ? nestRoute(value) : String(value);
    return `"${escape(key)}":${typeof value === 'string' ? `"${escape(route)}"` : route}`;
  });
  return `{${parts.join(',')}}`;
}

/** Backslashes and quotes, escaped as Nest does inside a route. */
function escape(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}

/** A decoded Nest RMQ packet: the handler's payload and the route of its pattern. */
export interface NestPacket {
  data: unknown;
  route: string;
}

/** Reads a request or event a Nest client sent; anything else is not one (DecodeError: dead-lettered). */
export function readNestPacket(body: unknown): NestPacket {
  if (typeof body !== 'object' || body === null || !('pattern' in body)) {
    throw new DecodeError('Not a Nest RMQ message: a handler with format "nest-rmq" takes JSON bodies { pattern, data, id? }');
  }
  const { pattern, data } = body as { pattern: unknown; data?: unknown };
  return { data, route: nestRoute(pattern) };
}

/** The body of a request to a Nest @MessagePattern handler (`id` is the call's correlation id) or of an event. */
export function nestPacket(pattern: NestPattern, data: unknown, id?: string): Record<string, unknown> {
  return id === undefined ? { pattern, data } : { pattern, data, id };
}

/**
 * The reply a Nest ClientRMQ takes: the result as `response`, or the error as `err` (as Nest's own
 * exception filter writes it, `{ status: 'error', message }`), ended at once (`isDisposed`).
 */
export function nestReply(result: unknown, error?: { name: string; message: string }): Record<string, unknown> {
  return error
    ? { err: { status: 'error', message: error.message, name: error.name }, isDisposed: true }
    : { response: result, isDisposed: true };
}

/** A Nest server's reply, as the call's result; its `err` as RpcRemoteError. */
export function readNestReply(body: unknown): unknown {
  if (typeof body !== 'object' || body === null || !('isDisposed' in body || 'response' in body || 'err' in body)) {
    throw new RpcRemoteError('DecodeError', 'The reply is not a Nest RMQ reply { err, response, isDisposed }');
  }
  const { err, response } = body as { err?: unknown; response?: unknown };
  if (err !== undefined && err !== null) throw nestError(err);
  return response;
}

function nestError(err: unknown): RpcRemoteError {
  if (typeof err === 'string') return new RpcRemoteError('Error', err);
  const { message, name } = err as { message?: unknown; name?: unknown };
  return new RpcRemoteError(typeof name === 'string' ? name : 'RpcException', typeof message === 'string' ? message : JSON.stringify(err));
}
