import { type CallHandler, type ExecutionContext, Inject, Injectable, Logger, type NestInterceptor } from '@nestjs/common';
import { type Observable, tap } from 'rxjs';
import { TrackContext, type MessageContext } from '../../lib';
import { APP_CONFIG, type AppConfig } from '../config';

/**
 * Times every message handler and, with LOG_EACH=1, logs how long it took with the request id.
 * Registered globally (APP_INTERCEPTOR), so with ROLE=all it also sees the API's HTTP routes:
 * `getType()` tells a message (`'amqp'`) from an HTTP request, which passes untouched.
 */
@Injectable()
export class TimingInterceptor implements NestInterceptor {
  private readonly logger = new Logger('Timing');

  constructor(
    private readonly track: TrackContext,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    if (context.getType<string>() !== 'amqp' || !this.config.logEach) return next.handle();
    const { queue } = context.switchToRpc().getContext<MessageContext>();
    const started = performance.now();
    const took = () => `${Math.round(performance.now() - started)} ms`;
    return next.handle().pipe(
      tap({
        complete: () => this.logger.log(`[${this.track.requestId}] ${queue}: ${took()}`),
        error: (error: Error) => this.logger.log(`[${this.track.requestId}] ${queue}: ${error.name} after ${took()}`),
      }),
    );
  }
}
