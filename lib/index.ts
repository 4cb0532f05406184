export { MessagingModule } from './messaging.module';
export { MessageHandler } from './decorators/message-handler.decorator';
export { Payload } from './decorators/payload.decorator';
export { MessageCtx } from './decorators/message-ctx.decorator';
export { MessageHeader } from './decorators/message-header.decorator';
export { RpcClient } from './rpc/rpc.client';
export { TrackContext } from './context/track-context';
export { MessagingHealth } from './messaging.health';
export { DeadLetters } from './consumer/dead-letters.service';
export { MessagingHarness } from './testing/messaging.harness';
export type { PublishedMessage, DeadLetteredMessage } from './testing/messaging.harness';
export { MESSAGE_CONTEXT } from './messaging.constants';
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
} from './interfaces/messaging-options.interface';
export type { Codec } from './codec/codec.interface';
export type { MessageHandlerOptions, ExchangeType } from './interfaces/message-handler-options.interface';
export type { MessageContext } from './interfaces/message-context.interface';
export type { SendOptions, RequestOptions, GatherOptions, HeaderValue } from './interfaces/send-options.interface';
