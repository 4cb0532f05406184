import { randomBytes } from 'node:crypto';
import type { CanActivate, Type } from '@nestjs/common';
import { MessagingConfigError } from '../messaging.errors';
import type { MessagingConsoleOptions } from './messaging-console-options.interface';

const DEFAULT_CONSOLE_PATH = '/messaging';
/** Segments of letters, digits and `._~-`: nothing Nest's router reads as a pattern (`:`, `*`, `(`), no `//`, no trailing `/`. */
const PATH = /^(\/[A-Za-z0-9._~-]+)+$/;
const MIN_SECRET_LENGTH = 32;

/** The console's options, checked. */
export interface ResolvedConsoleOptions {
  path: string;
  guard?: Type<CanActivate> | CanActivate;
  unsafeNoAuth: boolean;
  /** What CSRF tokens are made with (see csrf-token.ts). */
  secret: Buffer;
}

function fail(message: string): never {
  throw new MessagingConfigError(`MessagingConsoleModule.forRoot: ${message}`);
}

/** Checks the options, naming the option and the fix; the console never starts open by mistake. */
export function resolveConsoleOptions(options: MessagingConsoleOptions): ResolvedConsoleOptions {
  if (typeof options !== 'object' || options === null) fail('takes an options object: { guard: YourAuthGuard }');
  const { path = DEFAULT_CONSOLE_PATH, guard, unsafeNoAuth = false, csrfSecret } = options;
  if (typeof path !== 'string' || !PATH.test(path)) {
    fail(
      `"path" must be a URL path such as "/messaging" or "/admin/messaging": segments of letters, digits and ._~- (got ${JSON.stringify(path)})`,
    );
  }
  if (typeof unsafeNoAuth !== 'boolean') fail(`"unsafeNoAuth" must be true or false (got ${JSON.stringify(unsafeNoAuth)})`);
  if (guard !== undefined && !isGuard(guard)) {
    fail('"guard" must be a CanActivate class (an @Injectable() with canActivate) or an object with a canActivate method');
  }
  if (guard === undefined && !unsafeNoAuth) {
    fail(
      'the console needs a "guard": it shows message bodies and headers and replays and deletes dead letters, so it does not ' +
        'start open to anyone. Pass guard: YourAuthGuard (a CanActivate class or instance, e.g. the guard of your admin API); ' +
        'on a developer machine only, unsafeNoAuth: true starts it without one',
    );
  }
  if (csrfSecret !== undefined && (typeof csrfSecret !== 'string' || csrfSecret.length < MIN_SECRET_LENGTH)) {
    fail(`"csrfSecret" must be a string of at least ${MIN_SECRET_LENGTH} characters, the same on every instance`);
  }
  return { path, guard, unsafeNoAuth, secret: csrfSecret === undefined ? randomBytes(32) : Buffer.from(csrfSecret) };
}

function isGuard(guard: unknown): guard is Type<CanActivate> | CanActivate {
  if (typeof guard === 'function') return typeof (guard.prototype as Partial<CanActivate> | undefined)?.canActivate === 'function';
  return typeof guard === 'object' && guard !== null && typeof (guard as Partial<CanActivate>).canActivate === 'function';
}
