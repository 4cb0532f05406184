import type { ModuleMetadata, Type, InjectionToken, OptionalFactoryDependency } from '@nestjs/common';
import type { Codec } from './codec.interface';
import type { IdempotencyStore } from './idempotency-store.interface';
import type { PgPool } from '../interfaces/sql.interface';
import type { QueueType } from './message-handler-options.interface';
import type { AsyncApiOptions } from './asyncapi-options.interface';

export interface RetryPolicy {
  /** Every try counts, the first included. */
  attempts: number;
  /** delaysMs[i] is the wait before try i+2; the last one repeats. */
  delaysMs?: number[];
}

export interface ReconnectOptions {
  /** First wait after a lost connection. Default 200 ms. */
  initialDelayMs?: number;
  /** Upper bound of the exponential backoff. Default 10,000 ms. */
  maxDelayMs?: number;
  /**
   * How long startup keeps trying before it fails with BrokerUnreachableError.
   * Default 15,000 ms; `Infinity` keeps retrying (the app waits for the broker).
   */
  startupTimeoutMs?: number;
}

export interface TlsOptions {
  ca?: string | Buffer | Array<string | Buffer>;
  cert?: string | Buffer;
  key?: string | Buffer;
  passphrase?: string;
  servername?: string;
  rejectUnauthorized?: boolean;
}

/**
 * Bounds on the tracking data a context carries. A full set of items must fit in 32 KiB of
 * headers: maxItems x (14 + maxKeyLength + maxValueLength) <= 32,768, or startup fails.
 */
export interface TrackLimits {
  /** Longest accepted x-request-id; a longer one is replaced by a fresh id. Default 256. */
  maxRequestIdLength?: number;
  /** Most x-track-* items taken from one message or set by TrackContext.set(). Default 64. */
  maxItems?: number;
  /** Longest accepted item key (characters). Default 64. */
  maxKeyLength?: number;
  /** Longest accepted item value, in UTF-8 bytes. Default 256. */
  maxValueLength?: number;
}

export interface CompressionOptions {
  /** `br` is brotli at quality 4 (its default, 11, takes seconds per megabyte). */
  algorithm: 'gzip' | 'deflate' | 'br';
  /** Bodies at least this long once encoded are compressed; smaller ones are not worth it. Default 1024 bytes. */
  thresholdBytes?: number;
}

export interface MessagingOptions {
  /**
   * Names this connection, for an app that reaches several brokers or vhosts: import forRoot once
   * per connection, each with its own name; handlers pick theirs with
   * `@MessageHandler({ connection })` and services inject `@InjectRpcClient(name)`. Unnamed: the
   * default connection (injected by class, as `RpcClient`). Letters, digits, `_`, `.` and `-`.
   */
  name?: string;
  /** amqp:// or amqps:// URL; several URLs are the nodes of one cluster, tried in turn. */
  uri: string | string[];
  /**
   * `false`: handlers declare no queue, exchange or binding; startup checks that what they need
   * exists (queues, dead-letter and retry queues, exchanges) and fails naming what is missing.
   * For broker users without the configure permission. A handler's own `declare` overrides it.
   */
  declare?: boolean;
  /**
   * Type of the handler queues (with their retry and dead-letter queues) whose handler sets none.
   * `quorum` for a cluster: replicated, so they survive the loss of a node. Default `classic`;
   * broadcast handlers' per-instance queues stay classic (they are exclusive to their instance).
   */
  queueType?: QueueType;
  /**
   * Queue names on the broker for the names used in decorators and RpcClient calls, e.g.
   * `{ orders: 'prod.eu.orders' }` (from configuration, in a forRootAsync factory).
   */
  queues?: Record<string, string>;
  /** Exchange names on the broker for the names used in decorators and RpcClient calls. */
  exchanges?: Record<string, string>;
  /** Names this service in logs and in the x-origin header of what it sends. */
  serviceName?: string;
  /** Default max in-flight messages per handler per instance. Default 20. */
  prefetch?: number;
  /** Default timeout of request() and gather(). Default 10,000 ms. */
  rpcTimeoutMs?: number;
  /** How long shutdown waits for in-flight handlers. Default 10,000 ms. */
  shutdownTimeoutMs?: number;
  /** Default retry policy of handlers. Default { attempts: 3, delaysMs: [1000, 5000] }. */
  retry?: RetryPolicy | false;
  /** false makes a send-only instance that consumes nothing. Default true. */
  registerHandlers?: boolean;
  /** AMQP heartbeat; a stalled socket is detected after about two of these. Default 10 s. */
  heartbeatSeconds?: number;
  reconnect?: ReconnectOptions;
  /** How long send()/publish() wait for a connection and a confirm. Default 30,000 ms. */
  publishTimeoutMs?: number;
  /** Most publishes held while the connection is down; more reject at once. Default 10,000. */
  maxBufferedPublishes?: number;
  /**
   * Most publishes written and waiting for their confirm, per channel; more wait, unencoded, for
   * room. Bounds memory when callers fire sends without awaiting them. Default 2,048.
   */
  maxInFlightPublishes?: number;
  /**
   * Largest body a handler accepts, as received and once inflated; a larger one is dead-lettered
   * (DecodeError). Also the largest a send, a reply or the outbox writes (before and after
   * compression): a
   * larger one fails with EncodeError before it is written. Default 16 MiB, RabbitMQ 4's own
   * `max_message_size` (raise both together).
   */
  maxMessageBytes?: number;
  /**
   * Ceiling on the bytes of message bodies this instance's prefetched deliveries may hold at once.
   * They can hold each handler queue's `prefetch` × `maxMessageBytes`, summed over the queues; with
   * this set, startup fails (naming the queues) when that sum exceeds it. Default: not checked.
   */
  maxPrefetchedBytes?: number;
  /**
   * Deliveries of one message that may end without an outcome (the process died, the channel
   * closed) before it is dead-lettered as a poison message. Default 5; 0 disables the check.
   */
  maxRedeliveries?: number;
  /** Send messages persistent (delivery mode 2) unless a call says otherwise. Default true. */
  persistent?: boolean;
  /** Certificates for amqps:// URLs. */
  tls?: TlsOptions;
  track?: TrackLimits;
  /**
   * Codecs besides the built-in JSON, bytes and text ones (one with the content type of a built-in
   * one replaces it). `SendOptions.contentType` picks one for a send; deliveries are decoded by
   * their content type.
   */
  codecs?: Codec[];
  /**
   * Compresses what this module sends (content-encoding). What arrives gzip, deflate or br
   * compressed is inflated whatever this says. Default: no compression.
   */
  compression?: CompressionOptions;
  /** Prometheus (prom-client) and/or OpenTelemetry metrics; none by default (and then nothing is measured). */
  metrics?: MetricsOptions;
  /** Where `idempotent` handlers record what they handled, and for how long. */
  idempotency?: IdempotencyOptions;
  /** Enables the `Outbox` (PostgreSQL): messages written in the app's transactions, relayed after COMMIT. */
  outbox?: OutboxOptions;
  /** What the AsyncAPI document (`AsyncApiDocument`) says besides what the handlers tell: its info, this connection's server, what the app sends. */
  asyncApi?: AsyncApiOptions;
}

/** A prom-client `Registry` (only what the module uses of it, so prom-client's types are not needed to compile). */
export interface PrometheusRegistry {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: any): void;
}

export interface MetricsOptions {
  /**
   * Registers the module's metrics with prom-client (an optional peer: install it): `true` in
   * its default registry, `{ registry }` in that one.
   */
  prometheus?: boolean | { registry: PrometheusRegistry };
  /** Records the same instruments on the meter of @opentelemetry/api's global MeterProvider (registered before the app starts). */
  opentelemetry?: boolean;
}

export interface IdempotencyOptions {
  /** Default: a MemoryIdempotencyStore (this process only). */
  store?: IdempotencyStore;
  /** How long a handled message id is remembered. Default 86,400,000 ms (24 h). */
  ttlMs?: number;
  /**
   * How long a run's claim on a message id holds before another instance may take it over (a
   * crashed instance's claim ends by itself). A run that outlives it renews its claim every third
   * of it (stores with `renew`, the built-in ones all have it); with a store that cannot, it is
   * warned about and a copy may run alongside. Default 60,000 ms.
   */
  leaseMs?: number;
  /**
   * Longest wait for one store operation (claim, record, release, renewal). A store that does not
   * answer in time, or fails, counts as unreachable: the message goes back to its queue after a
   * back-off, not counted as a try nor as a redelivery. Default 5,000 ms.
   */
  storeTimeoutMs?: number;
  /** `idempotent` of handlers that do not set it. Default false. */
  default?: boolean;
}

export interface OutboxOptions {
  /** A `pg` Pool: the relay reads, marks and cleans the table through it and LISTENs on one of its connections. */
  pool: PgPool;
  /** Default `messaging_outbox`; `schema.name` works too. */
  table?: string;
  /** Create the table at startup if missing. Default true; false when migrations create it (docs/outbox-and-idempotency.md). */
  createTable?: boolean;
  /** Run a relay in this instance. Default true; false for instances that only write. */
  relay?: boolean;
  /** Rows one relay takes, publishes and marks per transaction. Default 500. */
  batchSize?: number;
  /** How often the relay looks for rows when no notification woke it. Default 1,000 ms. */
  pollIntervalMs?: number;
  /** How long sent rows are kept before they are deleted. Default 3,600,000 ms (1 h). */
  retentionMs?: number;
  /**
   * How long the relay waits for PostgreSQL: for a connection of the pool and for each statement
   * (also its `statement_timeout`). Past it the connection counts as dead (half-open) and is
   * closed; the relay tries again after a back-off. Default 10,000 ms.
   */
  queryTimeoutMs?: number;
}

export interface MessagingOptionsFactory {
  createMessagingOptions(): MessagingOptions | Promise<MessagingOptions>;
}

export interface MessagingModuleAsyncOptions extends Pick<ModuleMetadata, 'imports'> {
  /** The connection's name (see MessagingOptions.name): given here, since its tokens exist before the factory runs. */
  name?: string;
  inject?: Array<InjectionToken | OptionalFactoryDependency>;
  useFactory?: (...args: any[]) => MessagingOptions | Promise<MessagingOptions>;
  useClass?: Type<MessagingOptionsFactory>;
  useExisting?: Type<MessagingOptionsFactory>;
}
