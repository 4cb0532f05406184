import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { HealthIndicatorService, type HealthIndicatorResult } from '@nestjs/terminus';
import { getMessagingHealthToken } from '../operations/inject-operations.decorator';
import type { MessagingHealth } from '../operations/messaging-health';

/**
 * A @nestjs/terminus health indicator for the messaging module. Add it to the providers of the
 * module whose controller runs the checks (beside `TerminusModule`), then:
 * `health.check([() => messaging.isHealthy()])`, and for a named connection
 * `messaging.isHealthy('analytics-broker', 'analytics')`.
 */
@Injectable()
export class MessagingHealthIndicator {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly indicators: HealthIndicatorService,
  ) {}

  /**
   * `{ [key]: { status: 'up', connected, inFlight } }` while connected and consuming; otherwise
   * `status: 'down'` with a `reason` (`reconnecting`, `not connected`, `shutting down`), which
   * terminus' HealthCheckService answers with 503. `connection` picks a named connection (its
   * name is then in the details too); without it, the default one.
   */
  async isHealthy<const Key extends string = 'messaging'>(
    key: Key = 'messaging' as Key,
    connection?: string,
  ): Promise<HealthIndicatorResult<Key>> {
    const health = this.moduleRef.get<MessagingHealth>(getMessagingHealthToken(connection), { strict: false });
    const indicator = this.indicators.check(key);
    const details = { ...(connection === undefined ? {} : { connection }), connected: health.isConnected(), inFlight: health.inFlight() };
    const reason = health.notReadyReason();
    return reason === undefined ? indicator.up(details) : indicator.down({ reason, ...details });
  }
}
