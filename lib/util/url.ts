/**
 * Hides the password of every URL in a text (amqp, amqps or any other), so no log line or error
 * leaks it. The password runs to the last `@` of the authority (which ends at `/`, `?`, `#` or
 * whitespace): a raw `@` inside a password must not leave its tail readable.
 */
export function maskUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*):[^/?#\s]*@/gi, '$1:***@');
}

/** `memory://` and `memory://<name>`: the in-process broker. */
export function isMemoryUrl(url: string): boolean {
  return url.startsWith('memory://');
}
