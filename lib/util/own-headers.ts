/**
 * The headers of a delivery as the message has them. amqplib decodes a table into a plain object
 * by assignment, so a producer's `__proto__` entry replaces that object's prototype and would make
 * headers the message does not have readable; such a table is copied, own keys only.
 */
export function ownHeaders(headers: Record<string, unknown> | undefined): Record<string, unknown> {
  if (!headers) return {};
  if (Object.getPrototypeOf(headers) === Object.prototype) return headers;
  return Object.assign({}, headers);
}

/** A header the message itself has; an AMQP table may smuggle a `__proto__` entry in. */
export function own(headers: Record<string, unknown>, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(headers, key) ? headers[key] : undefined;
}
