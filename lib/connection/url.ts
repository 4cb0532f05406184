/** Hides the password of every amqp(s) URL in a text, so no log line or error leaks it. */
export function maskUrl(text: string): string {
  return text.replace(/(amqps?:\/\/[^:/@\s]*):[^@\s]*@/gi, '$1:***@');
}
