import { Inject, type InjectionToken } from '@nestjs/common';
import { connectionToken } from '../util/connection-token';
import { Outbox } from './outbox';

/** The token of a connection's Outbox (the class itself for the default connection). */
export function getOutboxToken(connection?: string): InjectionToken {
  return connectionToken(Outbox, connection);
}

/** Injects the Outbox of a named connection (the default one without a name). */
export const InjectOutbox = (connection?: string): ParameterDecorator & PropertyDecorator => Inject(getOutboxToken(connection));
