import { Injectable } from '@nestjs/common';
import { ConnectionManager } from '../connection/connection-manager';
import { HandlerConsumers } from '../nest/handler-consumers';
import { MessagingLifecycle } from '../nest/messaging-lifecycle';

export type MessagingNotReadyReason = 'reconnecting' | 'not connected' | 'shutting down';

/** For health checks: readiness turns false the moment shutdown starts. */
@Injectable()
export class MessagingHealth {
  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly lifecycle: MessagingLifecycle,
    private readonly consumers: HandlerConsumers,
    private readonly connections: ConnectionManager,
  ) {}

  /** Connected and taking work: every handler consuming. */
  isReady(): boolean {
    return this.notReadyReason() === undefined;
  }

  /**
   * Why this instance is not ready, or undefined when it is: `shutting down` from the first moment
   * of shutdown, `reconnecting` while a lost connection or consumer comes back, `not connected`
   * before the connections are up and the handlers consume.
   */
  notReadyReason(): MessagingNotReadyReason | undefined {
    const { publisher, consumer } = this.connections;
    if (this.lifecycle.isShuttingDown) return 'shutting down';
    if (publisher.isReconnecting || consumer.isReconnecting) return 'reconnecting';
    if (!this.connections.connected || !this.lifecycle.isAccepting) return 'not connected';
    if (!this.consumers.consuming) return 'reconnecting';
    return undefined;
  }

  isConnected(): boolean {
    return this.connections.connected;
  }

  /** Messages being handled right now in this instance. */
  inFlight(): number {
    return this.consumers.inFlight;
  }
}
