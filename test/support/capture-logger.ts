import type { LoggerService } from '@nestjs/common';

export interface CapturedLine {
  level: 'log' | 'error' | 'warn' | 'debug' | 'verbose' | 'fatal';
  message: string;
  context?: string;
  /** Everything Nest passed, stacks and causes included (what a credentials check must search). */
  text: string;
  at: number;
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

  /** Every line in full, one per line. */
  get text(): string {
    return this.lines.map((line) => `[${line.level}] ${line.text}`).join('\n');
  }

  /** Full texts of the lines matching `pattern`. */
  matching(pattern: RegExp): string[] {
    return this.lines.filter((line) => pattern.test(line.text)).map((line) => line.text);
  }

  /** Time of the first line matching `pattern` logged at or after `since`. */
  firstAt(pattern: RegExp, since = 0): number | undefined {
    return this.lines.find((line) => line.at >= since && pattern.test(line.text))?.at;
  }

  /** Lines whose message contains `text`, optionally of one level. */
  find(text: string, level?: CapturedLine['level']): CapturedLine[] {
    return this.lines.filter((line) => line.message.includes(text) && (level === undefined || line.level === level));
  }

  private push(level: CapturedLine['level'], message: unknown, rest: unknown[]): void {
    // Nest passes the logger's context as the last string argument (and a stack before it for errors).
    const context = typeof rest[rest.length - 1] === 'string' ? (rest[rest.length - 1] as string) : undefined;
    const text = typeof message === 'string' ? message : message instanceof Error ? message.message : JSON.stringify(message);
    const full = [message, ...rest].map(describe).join(' ');
    this.lines.push({ level, message: text, context, text: full, at: Date.now() });
    if (process.env.DEBUG_LOGS && (level === 'error' || level === 'warn')) {
      process.stderr.write(`[capture ${level}] ${context ?? ''} ${text}\n`);
    }
  }
}

function describe(part: unknown): string {
  if (part instanceof Error) return `${part.message}\n${part.stack}${part.cause ? `\ncause: ${describe(part.cause)}` : ''}`;
  if (typeof part === 'string') return part;
  try {
    return JSON.stringify(part);
  } catch {
    return String(part);
  }
}
