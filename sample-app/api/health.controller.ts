import { Controller, Get, ServiceUnavailableException } from '@nestjs/common';
import { MessagingHealth } from '../../lib';

/** Readiness: 503 while the broker is unreachable and from the moment shutdown starts. */
@Controller('health')
export class HealthController {
  constructor(private readonly messaging: MessagingHealth) {}

  @Get()
  check() {
    const status = { connected: this.messaging.isConnected(), inFlight: this.messaging.inFlight() };
    if (!this.messaging.isReady()) throw new ServiceUnavailableException({ status: 'unavailable', ...status });
    return { status: 'ok', ...status };
  }
}
