import { Inject, type InjectionToken } from '@nestjs/common';
import { connectionToken } from '../util/connection-token';
import { DeadLetters } from './dead-letters';
import { MessagingAdmin } from './messaging-admin';
import { MessagingHealth } from './messaging-health';

/** The tokens of a connection's operator services (their classes for the default connection). */
export function getDeadLettersToken(connection?: string): InjectionToken {
  return connectionToken(DeadLetters, connection);
}

export function getMessagingAdminToken(connection?: string): InjectionToken {
  return connectionToken(MessagingAdmin, connection);
}

export function getMessagingHealthToken(connection?: string): InjectionToken {
  return connectionToken(MessagingHealth, connection);
}

/** Inject the DeadLetters, MessagingAdmin or MessagingHealth of a named connection (the default one without a name). */
export const InjectDeadLetters = (connection?: string): ParameterDecorator & PropertyDecorator => Inject(getDeadLettersToken(connection));
export const InjectMessagingAdmin = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getMessagingAdminToken(connection));
export const InjectMessagingHealth = (connection?: string): ParameterDecorator & PropertyDecorator =>
  Inject(getMessagingHealthToken(connection));
