import { type ArgumentsHost, Catch } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { httpAnswerBody } from './http-status';

/**
 * Opt-in: answers the messaging errors a controller lets through with the HTTP status they mean
 * (see httpAnswerOf): `RpcTimeoutError` 504, an `RpcRemoteError` its remote handler's 4xx or 502,
 * broker and routing trouble 503, anything else 500. Bodies look like Nest's own
 * (`{ statusCode, message, error }`); a message about this service's internals is not shown.
 * Everything else goes to Nest's default handling. Register it like any filter:
 * `app.useGlobalFilters(new MessagingHttpExceptionFilter(app.get(HttpAdapterHost).httpAdapter))`,
 * `{ provide: APP_FILTER, useClass: MessagingHttpExceptionFilter }`, or `@UseFilters(...)`.
 */
@Catch()
export class MessagingHttpExceptionFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): void {
    // Registered globally it also sees what message handlers throw: that goes on, unchanged, to the
    // module's own failure path (retries, dead letters, error replies).
    if (host.getType() !== 'http') throw exception;
    const body = httpAnswerBody(exception);
    if (body === undefined) return super.catch(exception, host);
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    if (adapter === undefined) return super.catch(exception, host);
    adapter.reply(host.switchToHttp().getResponse(), body, body.statusCode);
  }
}
