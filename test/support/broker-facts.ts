/**
 * Vitest global setup of the projects on RabbitMQ: asks the broker's facts (major version,
 * denied features) once for the whole run and hands them to every test file's process through
 * the environment. Without an answer (no rabbitmqctl here) each file asks for itself.
 */
import { askBrokerFacts, BROKER_FACTS_ENV } from './rabbitmq-admin';

export default async function setup(): Promise<void> {
  if (process.env[BROKER_FACTS_ENV]) return;
  const facts = await askBrokerFacts().catch(() => undefined);
  if (facts) process.env[BROKER_FACTS_ENV] = JSON.stringify(facts);
}
