export { MessagingModule } from './messaging.module';
export { MessageHandler } from './decorators/message-handler.decorator';
export { Payload } from './decorators/payload.decorator';
export { MessageCtx } from './decorators/message-ctx.decorator';
export { MessageHeader } from './decorators/message-header.decorator';
export { RpcClient } from './rpc/rpc-client';
export { TrackContext } from './context/track-context';
export { MessagingHealth } from './operations/messaging-health';
export type { MessagingNotReadyReason } from './operations/messaging-health';
export { MessagingAdmin } from './operations/messaging-admin';
export type { QueueDepth } from './operations/messaging-admin';
export { DeadLetters } from './operations/dead-letters';
export { MessagingHarness } from './testing/messaging-harness';
export type { PublishedMessage, DeadLetteredMessage } from './testing/messaging-harness';
export { MESSAGE_CONTEXT } from './messaging.constants';
export { Outbox } from './outbox/outbox';
export type { OutboxSendOptions } from './outbox/outbox';
export type { PgClient, PgPool, SqlExecutor, SqlResult } from './interfaces/sql.interface';
export { MemoryIdempotencyStore } from './idempotency/memory-idempotency.store';
export type { MemoryIdempotencyStoreOptions } from './idempotency/memory-idempotency.store';
export { RedisIdempotencyStore } from './idempotency/redis-idempotency.store';
export type { RedisIdempotencyStoreOptions, RedisScriptClient } from './idempotency/redis-idempotency.store';
export { PostgresIdempotencyStore } from './idempotency/postgres-idempotency.store';
export type { PostgresIdempotencyStoreOptions } from './idempotency/postgres-idempotency.store';
export type { IdempotencyStore, IdempotencyClaim } from './interfaces/idempotency-store.interface';
export {
  MessagingError,
  MessagingConfigError,
  BrokerUnreachableError,
  ConnectionLostError,
  TopologyError,
  UnroutableError,
  ExchangeNotFoundError,
  PublishTimeoutError,
  RpcTimeoutError,
  RpcRemoteError,
  RpcAbortedError,
  UnrecoverableError,
  DecodeError,
  EncodeError,
  DeliveryLimitError,
  ShuttingDownError,
  NoContextError,
  PublishNackedError,
  PublishRefusedError,
  TrackLimitError,
  QueueNotFoundError,
  InvalidArgumentError,
  MessageRejectedError,
  NoHandlerError,
  SettlementError,
} from './messaging.errors';
export type {
  MessagingOptions,
  MessagingOptionsFactory,
  MessagingModuleAsyncOptions,
  RetryPolicy,
  ReconnectOptions,
  TlsOptions,
  TrackLimits,
  CompressionOptions,
  MetricsOptions,
  PrometheusRegistry,
  IdempotencyOptions,
  OutboxOptions,
} from './interfaces/messaging-options.interface';
export type { Codec } from './interfaces/codec.interface';
export type { MessageHandlerOptions, ExchangeType, QueueType } from './interfaces/message-handler-options.interface';
export type { MessageContext } from './interfaces/message-context.interface';
export type { SendOptions, RequestOptions, GatherOptions, HeaderValue } from './interfaces/send-options.interface';
