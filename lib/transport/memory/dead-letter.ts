import type { Envelope } from './memory-message';

export type DeathReason = 'expired' | 'rejected' | 'maxlen' | 'delivery_limit';

type Death = Record<string, unknown>;

/**
 * The message a queue dead-letters, as RabbitMQ 4 rewrites it: an `x-death` entry per
 * (queue, reason), most recent first, whose count grows when the same death happens again (its
 * keys in the order they were written; RabbitMQ 3.x sorted an updated entry's keys);
 * `x-first-death-*` set once; the per-message expiration removed (kept in the entry).
 */
export function deadLettered(
  envelope: Envelope,
  death: { queue: string; reason: DeathReason; exchange: string; routingKey: string | undefined; now: number },
): Envelope {
  const headers = { ...envelope.properties.headers };
  const deaths = Array.isArray(headers['x-death']) ? (headers['x-death'] as Death[]) : [];
  const same = deaths.find((d) => d.queue === death.queue && d.reason === death.reason);
  const entry: Death = same
    ? { ...same, count: (typeof same.count === 'number' ? same.count : 0) + 1 }
    : {
        count: 1,
        reason: death.reason,
        queue: death.queue,
        time: { '!': 'timestamp', value: Math.floor(death.now / 1000) },
        exchange: envelope.exchange,
        'routing-keys': [envelope.routingKey],
        ...(envelope.properties.expiration !== undefined && { 'original-expiration': envelope.properties.expiration }),
      };
  headers['x-death'] = [entry, ...deaths.filter((d) => d !== same)];
  if (headers['x-first-death-reason'] === undefined) {
    headers['x-first-death-exchange'] = envelope.exchange;
    headers['x-first-death-queue'] = death.queue;
    headers['x-first-death-reason'] = death.reason;
  }
  return {
    content: envelope.content,
    properties: { ...envelope.properties, headers, expiration: undefined },
    exchange: death.exchange,
    routingKey: death.routingKey ?? envelope.routingKey,
  };
}

/**
 * RabbitMQ drops a dead-lettered message that would come back to a queue it already died in
 * when nothing in between was a rejection: such a cycle would never end by itself.
 */
export function isCycle(envelope: Envelope, targetQueue: string): boolean {
  const deaths = envelope.properties.headers?.['x-death'];
  if (!Array.isArray(deaths)) return false;
  const at = (deaths as Death[]).findIndex((d) => d.queue === targetQueue);
  return at >= 0 && (deaths as Death[]).slice(0, at + 1).every((d) => d.reason !== 'rejected');
}
