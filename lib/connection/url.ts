/** Hides the password of every URL in a text (amqp, amqps or any other), so no log line or error leaks it. */
export function maskUrl(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:***@');
}
