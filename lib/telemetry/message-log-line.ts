import { inspect } from 'node:util';

/**
 * A log line about one message, passed to Nest's logger as the message object. Loggers that
 * take fields get them (nestjs-pino merges the object into the record: `msg`, `queue`,
 * `messageId`, `requestId`, `handler`; ConsoleLogger's JSON mode prints them); Nest's default
 * console logger prints the line as text, starting with the request id.
 */
export class MessageLogLine {
  constructor(
    readonly msg: string,
    readonly queue: string,
    readonly messageId: string,
    readonly requestId: string | undefined,
    readonly handler?: string,
  ) {}

  toString(): string {
    return `[${this.requestId ?? '-'}] ${this.msg}`;
  }

  [inspect.custom](): string {
    return this.toString();
  }
}
