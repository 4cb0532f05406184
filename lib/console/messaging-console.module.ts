import {
  Controller,
  type DynamicModule,
  Inject,
  type MiddlewareConsumer,
  Module,
  type NestModule,
  type Type,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { COUNT_OUTCOMES } from '../messaging.constants';
import { CONSOLE_CONTROLLER, CONSOLE_OPTIONS } from './console.constants';
import { ConsoleExceptionFilter } from './console-exception.filter';
import { ConsoleController } from './console.controller';
import { resolveConsoleOptions, type ResolvedConsoleOptions } from './console.options';
import { CsrfGuard } from './csrf.guard';
import type { MessagingConsoleOptions } from './messaging-console-options.interface';
import { MessagingConsoleService } from './messaging-console.service';
import { SecurityHeaders } from './security-headers';

/**
 * An operator console for the app's handlers, queues and dead letters, mounted on its HTTP server
 * (Express) at `path`, behind `guard`. Global: each MessagingModule connection sees COUNT_OUTCOMES
 * and counts its outcomes for the overview.
 */
@Module({})
export class MessagingConsoleModule implements NestModule {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(@Inject(CONSOLE_CONTROLLER) private readonly controller: Type<ConsoleController>) {}

  /** Fails at once, naming the option and the fix, without `guard` (unless `unsafeNoAuth: true`) or with a wrong option. */
  static forRoot(options: MessagingConsoleOptions): DynamicModule {
    const resolved = resolveConsoleOptions(options);
    const controller = mountConsoleController(resolved);
    return {
      module: MessagingConsoleModule,
      global: true,
      imports: options.imports ?? [],
      controllers: [controller],
      providers: [
        { provide: CONSOLE_OPTIONS, useValue: resolved },
        { provide: CONSOLE_CONTROLLER, useValue: controller },
        { provide: COUNT_OUTCOMES, useValue: true },
        MessagingConsoleService,
        CsrfGuard,
      ],
      exports: [COUNT_OUTCOMES],
    };
  }

  configure(consumer: MiddlewareConsumer): void {
    consumer.apply(SecurityHeaders).forRoutes(this.controller);
  }
}

/**
 * The console's routes as a controller of their own at `path`, its class guarded by `guard` (run
 * after the app's global guards, before CsrfGuard on the actions): Nest's public decorators,
 * applied to a subclass made for this forRoot, so two consoles in one app do not share one.
 */
function mountConsoleController({ path, guard }: ResolvedConsoleOptions): Type<ConsoleController> {
  class MessagingConsoleController extends ConsoleController {}
  Controller(path)(MessagingConsoleController);
  // A broker that cannot be reached answers 503 (and a page that times out 504), not Nest's 500;
  // a page as a page of the console, the JSON API as JSON.
  UseFilters(ConsoleExceptionFilter)(MessagingConsoleController);
  if (guard) UseGuards(guard)(MessagingConsoleController);
  return MessagingConsoleController;
}
