import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { MessagingHealth } from '../../lib';
import { MessagingHealthIndicator } from '../../lib/terminus';

/**
 * Kubernetes probes. Readiness (`/health`): 503 while the broker connection is down or coming
 * back, and from the moment shutdown starts, so no new HTTP traffic is routed here while
 * in-flight messages finish. Liveness (`/health/live`): the process answers; a broker outage must
 * not restart every pod.
 */
@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly messaging: MessagingHealthIndicator,
    private readonly state: MessagingHealth,
  ) {}

  @Get()
  @HealthCheck()
  async ready() {
    const result = await this.health.check([() => this.messaging.isHealthy()]);
    // The sample's earlier fields, kept for its clients: terminus' result with them beside.
    return { ...result, connected: this.state.isConnected(), inFlight: this.state.inFlight() };
  }

  @Get('live')
  live() {
    return { status: 'ok' };
  }
}
