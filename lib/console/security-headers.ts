import { Injectable, type NestMiddleware } from '@nestjs/common';
import type { ServerResponse } from 'node:http';
import { SECURITY_HEADERS } from './console.constants';

/**
 * Puts SECURITY_HEADERS on every response of the console's routes. A middleware, so they are set
 * before the guards run: a refusal (403) carries them too.
 */
@Injectable()
export class SecurityHeaders implements NestMiddleware {
  use(_request: unknown, response: ServerResponse, next: () => void): void {
    for (const [name, value] of Object.entries(SECURITY_HEADERS)) response.setHeader(name, value);
    next();
  }
}
