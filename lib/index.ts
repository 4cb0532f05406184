export { MessagingModule } from './messaging.module';
export { MessageHandler } from './decorators/message-handler.decorator';
export { Payload } from './decorators/payload.decorator';
export { MessageCtx } from './decorators/message-ctx.decorator';
export { MessageHeader } from './decorators/message-header.decorator';
export { RpcClient } from './rpc/rpc-client';
export { InjectRpcClient, getRpcClientToken } from './rpc/inject-rpc-client.decorator';
export { TrackContext } from './context/track-context';
export { MessagingHealth } from './operations/messaging-health';
export type { MessagingNotReadyReason } from './operations/messaging-health';
export { MessagingAdmin } from './operations/messaging-admin';
export type { QueueDepth, HandlerSummary } from './operations/messaging-admin';
export type { OutcomeCounts } from './telemetry/outcome-counters';
export { DeadLetters } from './operations/dead-letters';
export type { DeadLetter, DeadLetterPage } from './operations/dead-letter';
export {
  InjectDeadLetters,
  InjectMessagingAdmin,
  InjectMessagingHealth,
  getDeadLettersToken,
  getMessagingAdminToken,
  getMessagingHealthToken,
} from './operations/inject-operations.decorator';
export { AsyncApiDocument } from './asyncapi/asyncapi-document';
export { writeAsyncApiDocument } from './asyncapi/write-asyncapi-document';
export type {
  AsyncApiOptions,
  AsyncApiInfo,
  AsyncApiPublish,
  JsonSchema,
  PayloadDescription,
} from './interfaces/asyncapi-options.interface';
export { MESSAGE_CONTEXT } from './messaging.constants';
export { MessagingHttpExceptionFilter } from './http/messaging-http-exception.filter';
export { httpAnswerOf } from './http/http-status';
export type { HttpAnswer } from './http/http-status';
export type { IdempotencyStore, IdempotencyClaim } from './interfaces/idempotency-store.interface';
export {
  MessagingError,
  MessagingConfigError,
  BrokerUnreachableError,
  BrokerRefusedError,
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
export type { MessageContext, CloudEventAttributes } from './interfaces/message-context.interface';
export type {
  SendOptions,
  RequestOptions,
  GatherOptions,
  HeaderValue,
  NestRmqCallOptions,
  CloudEventsOptions,
} from './interfaces/send-options.interface';

/*
 * Deprecated here since 0.2: the plug-ins have entries of their own (`nestjs-messaging/testing`,
 * `nestjs-messaging/outbox`, `nestjs-messaging/idempotency`). These re-exports of the same classes
 * stay for one minor version (see CHANGELOG.md); they will be removed in 0.3.
 */
export * from './testing';
export * from './outbox';
export { MemoryIdempotencyStore, RedisIdempotencyStore, PostgresIdempotencyStore } from './idempotency';
export type {
  MemoryIdempotencyStoreOptions,
  RedisIdempotencyStoreOptions,
  RedisScriptClient,
  PostgresIdempotencyStoreOptions,
} from './idempotency';
