/**
 * Hides the password of every URL in a text (amqp, amqps or any other), so no log line or error
 * leaks it. The password runs to the last `@` of the authority (which ends at `/`, `?`, `#` or
 * whitespace): a raw `@` inside a password must not leave its tail readable.
 */
export function maskUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^/?#\s]*@/gi, '$1:***@');
}

/** The virtual host an amqp(s):// URL names: its path without the first `/`, decoded; `/` when it names none. */
export function vhostOf(url: URL): string {
  return url.pathname.length > 1 ? decodeURIComponent(url.pathname.slice(1)) : '/';
}

/** `memory://` and `memory://<name>`: the in-process broker. */
export function isMemoryUrl(url: string): boolean {
  return url.startsWith('memory://');
}

/**
 * maskUrl for a value that may not be a valid URL (an option being refused): a raw `/`, `?` or `#`
 * in a password (a common slip) ends maskUrl's authority early, so here everything from the user's
 * `:` to the last `@` before whitespace is hidden. It may hide more than the password, never less.
 */
export function maskUrlStrictly(text: string): string {
  return maskUrl(text).replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):\S*@/gi, '$1:***@');
}
