import { Injectable } from '@nestjs/common';
import { ConnectionManager } from './connection/connection.manager';
import { HandlerConsumers } from './consumer/handler-consumers';
import { MessagingLifecycle } from './messaging.lifecycle';

/** For health checks: readiness turns false the moment shutdown starts. */
@Injectable()
export class MessagingHealth {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly lifecycle: MessagingLifecycle,
    private readonly consumers: HandlerConsumers,
    private readonly connections: ConnectionManager,
  ) {}

  /** Connected and taking work. */
  isReady(): boolean {
    return this.lifecycle.isAccepting && this.connections.connected;
  }

  isConnected(): boolean {
    return this.connections.connected;
  }

  /** Messages being handled right now in this instance. */
  inFlight(): number {
    return this.consumers.inFlight;
  }
}
