import { Inject, type InjectionToken } from '@nestjs/common';
import { connectionToken } from '../util/connection-token';
import { MessagingHarness } from './messaging-harness';

/** The token of a connection's MessagingHarness (the class itself for the default connection). */
export function getMessagingHarnessToken(connection?: string): InjectionToken {
  return connectionToken(MessagingHarness, connection);
}

/** Injects the MessagingHarness of a named connection (the default one without a name). */
export const InjectMessagingHarness = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getMessagingHarnessToken(connection));
