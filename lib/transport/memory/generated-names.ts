import { randomBytes } from 'node:crypto';

/** A broker-generated name as RabbitMQ makes them: a prefix and 22 random characters. */
export function generatedName(prefix: string): string {
  return prefix + randomBytes(16).toString('base64url').slice(0, 22);
}
