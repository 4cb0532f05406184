import type { LoggerService } from '@nestjs/common';

export interface CapturedLine {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context?: string;
}

/**
 * A LoggerService that keeps every line, for tests that check what the library logs. Pass it to
 * NestFactory as `logger:`; Nest then routes every `new Logger(...)` of the app through it.
 * Errors are echoed to stderr when DEBUG_LOGS is set.
 */
export class CaptureLogger implements LoggerService {
  readonly lines: CapturedLine[] = [];

  log(message: unknown, ...rest: unknown[]): void {
    this.push('log', message, rest);
  }
  error(message: unknown, ...rest: unknown[]): void {
    this.push('error', message, rest);
  }
  warn(message: unknown, ...rest: unknown[]): void {
    this.push('warn', message, rest);
  }
  debug(message: unknown, ...rest: unknown[]): void {
    this.push('debug', message, rest);
  }
  verbose(message: unknown, ...rest: unknown[]): void {
    this.push('verbose', message, rest);
  }
  fatal(message: unknown, ...rest: unknown[]): void {
    this.push('fatal', message, rest);
  }

  /** Lines whose message contains `text`, optionally of one level. */
  find(text: string, level?: CapturedLine['level']): CapturedLine[] {
    return this.lines.filter((line) => line.message.includes(text) && (level === undefined || line.level === level));
  }

  private push(level: CapturedLine['level'], message: unknown, rest: unknown[]): void {
    // Nest passes the logger's context as the last string argument (and a stack before it for errors).
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    const text = typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message);
    this.lines.push({ level, message: text, context });
    if (process.env.DEBUG_LOGS && (level === 'error' || level === 'warn')) {
      process.stderr.write(`[capture ${level}] ${context ?? ''} ${text}\n`);
    }
  }
}
