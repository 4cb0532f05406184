import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/** A nonce as csrfNonce makes it: 32 random bytes, base64url. */
const NONCE = /^[A-Za-z0-9_-]{43}$/;

/** A browser's own random value, kept in its cookie. */
export function csrfNonce(): string {
  return randomBytes(32).toString('base64url');
}

export function isCsrfNonce(value: unknown): value is string {
  return typeof value === 'string' && NONCE.test(value);
}

/**
 * The token a page puts in its forms: HMAC-SHA256 of the browser's cookie nonce under the
 * console's secret. Another site can neither read the cookie nor, without the secret, make the
 * token of a nonce it planted itself.
 */
export function csrfToken(secret: Buffer, nonce: string): string {
  return createHmac('sha256', secret).update(`nestjs-messaging-console:${nonce}`).digest('base64url');
}

/** Whether `token` is the token of `nonce`, compared in constant time. */
export function csrfTokenMatches(secret: Buffer, nonce: unknown, token: unknown): boolean {
  if (!isCsrfNonce(nonce) || typeof token !== 'string') return false;
  const expected = Buffer.from(csrfToken(secret, nonce));
  const given = Buffer.from(token);
  return given.length === expected.length && timingSafeEqual(given, expected);
}
