import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { IncomingHttpHeaders } from 'node:http';
import { cookieValue } from './cookies';
import { CONSOLE_OPTIONS, CSRF_COOKIE, CSRF_FIELD, CSRF_HEADER } from './console.constants';
import type { ResolvedConsoleOptions } from './console.options';
import { bodyField, type ConsoleRequest, mountPath } from './console-request';
import { PAGE_FORM, pageRequest } from './console-exception.filter';
import { csrfTokenMatches } from './csrf-token';

/**
 * On every action (POST) of the console, after the auth guard: the request carries the token of
 * the browser's own cookie nonce (in the form, or the x-csrf-token header), so a page of another
 * site cannot make an operator's browser replay or delete anything. Refused: 403.
 */
@Injectable()
export class CsrfGuard implements CanActivate {
  constructor(
    @Inject(CONSOLE_OPTIONS) private readonly options: ResolvedConsoleOptions,
    private readonly reflector: Reflector,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const request = context.switchToHttp().getRequest<ConsoleRequest>();
    // A page's form refused here still answers with a page (ConsoleExceptionFilter).
    const form = this.reflector.get<string | undefined>(PAGE_FORM, context.getHandler());
    if (form !== undefined) pageRequest(request, mountPath(request, form));
    return csrfAllows(this.options.secret, request.headers, request.body);
  }
}

/**
 * Whether an action may go on: a browser that says where the request comes from
 * (Sec-Fetch-Site) says from this origin, and the token matches the cookie's nonce.
 */
export function csrfAllows(secret: Buffer, headers: IncomingHttpHeaders, body: unknown): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const token = bodyField(body, CSRF_FIELD) ?? headers[CSRF_HEADER];
  return csrfTokenMatches(secret, cookieValue(headers.cookie, CSRF_COOKIE), token);
}
