import type { CanActivate, ModuleMetadata, Type } from '@nestjs/common';

export interface MessagingConsoleOptions {
  /** Where the console is mounted on the app's HTTP server (after any global prefix). Default `/messaging`. */
  path?: string;
  /**
   * Who may use the console: a Nest guard (a CanActivate class, made by Nest's injector, or an
   * instance), run before every page, API call and action, after the app's global guards. The
   * console shows message bodies and headers and replays and deletes dead letters: it does not
   * start without one, unless `unsafeNoAuth`.
   */
  guard?: Type<CanActivate> | CanActivate;
  /** For local development only: starts the console open to anyone who reaches it, with a warning in the log. */
  unsafeNoAuth?: boolean;
  /** Modules the guard's class needs providers of (besides global ones). */
  imports?: ModuleMetadata['imports'];
  /**
   * The secret CSRF tokens are made with, at least 32 characters. Default: a random one per
   * process, so behind a load balancer without sticky sessions, give every instance the same.
   */
  csrfSecret?: string;
}
