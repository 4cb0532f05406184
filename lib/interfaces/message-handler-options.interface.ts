import type { RetryPolicy } from './messaging-options.interface';

export type ExchangeType = 'topic' | 'direct' | 'fanout' | 'headers';

export interface MessageHandlerOptions {
  /** The queue consumed (declared durable if missing). Required unless `broadcast`. */
  queue?: string;
  /** Bind the queue to this exchange (declared if missing, `topic` unless `exchangeType`). */
  exchange?: string;
  exchangeType?: ExchangeType;
  /** Binding keys; default `#` for topic, the queue name for direct, none for fanout/headers. */
  routingKey?: string | string[];
  /** Every running instance gets its own copy (a per-instance exclusive queue bound to `exchange`). */
  broadcast?: boolean;
  /** Max in-flight messages of this handler per instance. */
  prefetch?: number;
  /** Overrides the module default. */
  retry?: RetryPolicy | false;
  queueOptions?: { durable?: boolean; arguments?: Record<string, unknown> };
}
