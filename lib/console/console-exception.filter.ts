import { STATUS_CODES } from 'node:http';
import { type ArgumentsHost, Catch, HttpException, Logger, SetMetadata } from '@nestjs/common';
import { httpAnswerBody } from '../http/http-status';
import { MessagingHttpExceptionFilter } from '../http/messaging-http-exception.filter';
import { errorPage } from './error-page';

const HTML = 'text/html; charset=utf-8';

/** The requests a browser made for a page (or a page's form): their mount path, for the way back. */
const pages = new WeakMap<object, string>();

/** Marks `request` as one for a page: an error answers it with an HTML page. Returns `base`. */
export function pageRequest(request: object, base: string): string {
  pages.set(request, base);
  return base;
}

/** Metadata of a route a page's form posts to: its path below the console's mount. */
export const PAGE_FORM = Symbol('nestjs-messaging:console-page-form');

/**
 * On a route a page's form posts to, with its path below the console's mount: a guard that
 * refuses the post before the route runs (CsrfGuard) marks it a page request, so that the browser
 * gets a page of the console, not the API's JSON.
 */
export const PageForm = (route: string): MethodDecorator => SetMetadata(PAGE_FORM, route);

/**
 * Answers the console's errors: a page (or a form posted from one) with an HTML page of the
 * console, its status that of MessagingHttpExceptionFilter (RabbitMQ unreachable 503, a page that
 * timed out 504) or of Nest's HttpException; the JSON API as MessagingHttpExceptionFilter does.
 */
@Catch()
export class ConsoleExceptionFilter extends MessagingHttpExceptionFilter {
  private readonly logger = new Logger('MessagingConsole');

  override catch(exception: unknown, host: ArgumentsHost): void {
    const request = host.getType() === 'http' ? (host.switchToHttp().getRequest() as object) : undefined;
    const base = request && pages.get(request);
    const adapter = this.httpAdapterHost?.httpAdapter ?? this.applicationRef;
    if (base === undefined || adapter === undefined) return super.catch(exception, host);
    const { status, message } = this.answerOf(exception);
    const response = host.switchToHttp().getResponse();
    adapter.setHeader(response, 'Content-Type', HTML);
    adapter.reply(response, errorPage(base, status, message), status);
  }

  private answerOf(exception: unknown): { status: number; message: string } {
    if (exception instanceof HttpException) return { status: exception.getStatus(), message: exception.message };
    const body = httpAnswerBody(exception);
    if (body === undefined || body.statusCode === 500) {
      // Nobody but the log may see what went wrong inside: the page only says that it did.
      this.logger.error(`A console page failed: ${(exception as Error)?.stack ?? String(exception)}`);
    }
    return body ? { status: body.statusCode, message: body.message ?? 'Error' } : { status: 500, message: STATUS_CODES[500]! };
  }
}
