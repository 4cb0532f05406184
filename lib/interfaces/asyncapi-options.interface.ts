import type { Type } from '@nestjs/common';
import type { ExchangeType } from './message-handler-options.interface';

/** A JSON Schema object (draft-07, the dialect AsyncAPI 3 payloads are written in). */
export type JsonSchema = Record<string, unknown>;

/**
 * What a message's payload looks like in the AsyncAPI document: a class (its class-validator rules
 * become a JSON Schema when `class-validator-jsonschema` is installed) or a JSON Schema.
 */
export type PayloadDescription = Type<unknown> | JsonSchema;

/** The `info` of the AsyncAPI document. */
export interface AsyncApiInfo {
  /** Default: `name` of the package.json in the working directory, else 'nestjs-messaging app'. */
  title?: string;
  /** Default: `version` of that package.json, else '0.0.0'. */
  version?: string;
  /** Default: `description` of that package.json, if any. */
  description?: string;
}

/**
 * Something the app sends, which its handlers cannot tell: a `send` operation on the channel of the
 * exchange (`publish()`) or of the queue (`send()`, `request()`). Give `exchange` or `queue`, as
 * the code names them (the `queues` / `exchanges` rename maps apply).
 */
export interface AsyncApiPublish {
  exchange?: string;
  /** The exchange's type when no handler of the app binds to it. Default `topic`. */
  exchangeType?: ExchangeType;
  queue?: string;
  /** With `exchange`: the routing key it publishes with. */
  routingKey?: string;
  /** The AMQP `type` it sends with (`SendOptions.type`). */
  messageType?: string;
  /** Default: an unknown payload. */
  payload?: PayloadDescription;
  /** The message's name in the document (letters, digits, '.', '_' or '-'). Default: the payload class's name. */
  name?: string;
  summary?: string;
  description?: string;
}

/** `MessagingModule.forRoot({ asyncApi })`: what `AsyncApiDocument` adds to what the handlers tell. */
export interface AsyncApiOptions {
  /** Taken from the default connection's options (else the first named one that has it). */
  info?: AsyncApiInfo;
  /**
   * The broker this connection's server is described with instead of `uri` (credentials are never
   * shown): e.g. the production broker while the document is written in CI on `uri: 'memory://'`.
   */
  server?: string;
  publishes?: AsyncApiPublish[];
}
