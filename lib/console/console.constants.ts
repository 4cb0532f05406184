/** The console's resolved options (ResolvedConsoleOptions). */
export const CONSOLE_OPTIONS = Symbol('nestjs-messaging:console-options');
/** The controller class forRoot mounted, for the middleware to apply to its routes. */
export const CONSOLE_CONTROLLER = Symbol('nestjs-messaging:console-controller');

/** The cookie holding the browser's CSRF nonce. */
export const CSRF_COOKIE = 'nm-console-csrf';
/** The form field, or JSON body property, carrying the CSRF token. */
export const CSRF_FIELD = '_csrf';
/** The request header an API client may carry the CSRF token in instead. */
export const CSRF_HEADER = 'x-csrf-token';

/**
 * Every response of the console: nothing loads but its own stylesheet (no script at all, no
 * inline style, no other origin), forms post only to it, no page may frame it; the browser never
 * guesses a content type, sends no referrer, and keeps nothing in its cache.
 */
export const SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'Content-Security-Policy':
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'X-Frame-Options': 'DENY',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};
