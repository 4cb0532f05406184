import { Injectable } from '@nestjs/common';
import { DEFAULT_CONNECTION } from '../messaging.constants';
import { ConnectionDirectory } from '../nest/connection-directory';
import { HandlerExplorer } from '../nest/handler-explorer';
import { defineHandler } from '../topology/handler-definition';
import { appInfo } from './app-info';
import { asyncApiDocument, type DocumentedHandler, INSTANCE_ID } from './asyncapi-generator';
import { handlerTypes } from './handler-types';
import { loadSchemaConverter, PayloadSchemas } from './payload-schemas';

/**
 * The app's AsyncAPI 3.0 document: every connection of the app (each a server), its handlers'
 * queues and exchanges, what they take and answer, and what `asyncApi.publishes` says the app
 * sends. One document per app: every `MessagingModule.forRoot` provides this class, and each
 * describes all of them, so whichever one Nest injects gives the same document.
 */
@Injectable()
export class AsyncApiDocument {
  private built?: Record<string, unknown>;

  /** @internal Created by Nest's injector; its parameters are internals, left out of the typings. */
  constructor(
    private readonly explorer: HandlerExplorer,
    private readonly directory: ConnectionDirectory,
  ) {}

  /**
   * The document as JSON-ready data. Built on the first call (the app's handlers and options are
   * all known by then), from metadata only: no broker is asked. Each call returns a fresh deep
   * copy, which the caller may change (e.g. add security schemes) without changing the next one.
   */
  document(): Record<string, unknown> {
    this.built ??= this.build();
    return structuredClone(this.built);
  }

  private build(): Record<string, unknown> {
    const connections = this.directory.options();
    const byName = new Map(connections.map((connection) => [connection.name, connection]));
    const handlers = this.explorer.explore().handlers.flatMap((handler): DocumentedHandler[] => {
      const connection = byName.get(handler.options.connection ?? DEFAULT_CONNECTION);
      // A send-only connection (`registerHandlers: false`) consumes nothing: its handlers receive nothing.
      if (!connection?.registerHandlers) return [];
      return [
        {
          connection: connection.name,
          definition: defineHandler(handler.name, handler.options, connection, INSTANCE_ID),
          ...handlerTypes(handler.classRef, handler.methodName, handler.options),
        },
      ];
    });
    const info = appInfo(connections.find((connection) => connection.asyncApi.info)?.asyncApi.info);
    // Through JSON once: what is served and written is exactly this (no undefined, no prototypes).
    return JSON.parse(
      JSON.stringify(asyncApiDocument({ info, connections, handlers }, new PayloadSchemas(loadSchemaConverter()))),
    ) as Record<string, unknown>;
  }
}
