import { Injectable } from '@nestjs/common';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { MessagingHealth } from '../operations/messaging-health';

/**
 * A @nestjs/terminus health indicator for the messaging module. Add it to the providers of the
 * module whose controller runs the checks (beside `TerminusModule`), then:
 * `health.check([() => messaging.isHealthy()])`.
 */
@Injectable()
export class MessagingHealthIndicator {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly health: MessagingHealth,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /**
   * `{ [key]: { status: 'up', connected, inFlight } }` while connected and consuming; otherwise
   * `status: 'down'` with a `reason` (`reconnecting`, `not connected`, `shutting down`), which
   * terminus' HealthCheckService answers with 503.
   */
  async isHealthy<const Key extends string = 'messaging'>(key: Key = 'messaging' as Key): Promise<HealthIndicatorResult<Key>> {
    const indicator = this.indicators.check(key);
    const details = { connected: this.health.isConnected(), inFlight: this.health.inFlight() };
    const reason = this.health.notReadyReason();
    return reason === undefined ? indicator.up(details) : indicator.down({ reason, ...details });
  }
}
