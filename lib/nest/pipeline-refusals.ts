import { HttpException } from '@nestjs/common';
import { MessageRejectedError } from '../messaging.errors';

/**
 * Tells a message that Nest's pipeline refused (a pipe threw, a guard said no) from a handler
 * that failed: the first is dead-lettered at once, the second goes through the retry policy.
 * What guards and pipes throw is recorded as it passes, so interceptors and exception filters
 * still see the original exception; it becomes a MessageRejectedError only once the pipeline is
 * done with it.
 */
export class PipelineRefusals {
  private readonly refused = new WeakSet<object>();

  /** Whatever a pipe throws refuses the message: the same payload would fail every try. */
  fromPipe(error: unknown): unknown {
    return this.record(error);
  }

  /**
   * A guard that returns false makes Nest throw ForbiddenException; one that throws a client error
   * (401, 403...) refuses the message as deliberately. Anything else a guard throws (a bug, a lost
   * database) is a failure like the handler's own, and is retried.
   */
  fromGuard(error: unknown): unknown {
    return error instanceof HttpException && error.getStatus() < 500 ? this.record(error) : error;
  }

  /** What the pipeline threw, as the outcome should see it. */
  explain(error: unknown): unknown {
    if (typeof error !== 'object' || error === null || !this.refused.has(error)) return error;
    return new MessageRejectedError(error instanceof Error ? error.name : 'Error', messagesOf(error), error);
  }

  private record(error: unknown): object {
    const recorded = typeof error === 'object' && error !== null ? error : new Error(String(error));
    this.refused.add(recorded);
    return recorded;
  }
}

/** An HttpException's messages as its response lists them (ValidationPipe: one per failed constraint). */
function messagesOf(error: object): string {
  if (error instanceof HttpException) {
    const response = error.getResponse();
    const message = typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
    if (Array.isArray(message)) return message.map(String).join('; ');
    if (typeof message === 'string') return message;
  }
  return error instanceof Error ? error.message : String(error);
}
