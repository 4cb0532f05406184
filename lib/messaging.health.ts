import { Injectable } from '@nestjs/common';
import { ConnectionManager } from './connection/connection.manager';
import { ConsumerOrchestrator } from './consumer/consumer.orchestrator';

/** For health checks: readiness turns false the moment shutdown starts. */
@Injectable()
export class MessagingHealth {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly orchestrator: ConsumerOrchestrator,
    private readonly connections: ConnectionManager,
  ) {}

  /** Connected and taking work. */
  isReady(): boolean {
    return this.orchestrator.isAccepting && this.connections.connected;
  }

  isConnected(): boolean {
    return this.connections.connected;
  }

  /** Messages being handled right now in this instance. */
  inFlight(): number {
    return this.orchestrator.inFlight;
  }
}
