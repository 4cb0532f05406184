import { Module } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import { MessagingHealthIndicator } from '../../lib/terminus';
import { HealthController } from './health.controller';
import { MetricsController } from './metrics.controller';

/** What operators scrape and probe, in every role: `/health`, `/health/live`, `/metrics`. */
@Module({
  imports: [TerminusModule.forRoot({ gracefulShutdownTimeoutMs: 0 })],
  controllers: [HealthController, MetricsController],
  providers: [MessagingHealthIndicator],
})
export class OpsModule {}
