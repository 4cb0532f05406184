import { Injectable } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { DEFAULT_CONNECTION, MESSAGING_CONNECTION, MESSAGING_OPTIONS } from '../messaging.constants';
import { MessagingConfigError } from '../messaging.errors';
import type { ResolvedMessagingOptions } from '../messaging.options';
import type { DiscoveredHandler } from './handler-explorer';

/**
 * The connections of the app, one per imported forRoot (each module provides its name under
 * MESSAGING_CONNECTION), and the startup checks that need all of them: no name twice, no handler
 * on a connection nobody made.
 */
@Injectable()
export class ConnectionDirectory {
  constructor(private readonly discovery: DiscoveryService) {}

  /** Every forRoot's connection name, once per module that has it. */
  names(): string[] {
    return this.discovery
      .getProviders()
      .filter((wrapper) => wrapper.token === MESSAGING_CONNECTION)
      .map((wrapper) => wrapper.instance as string);
  }

  /** Every forRoot's options, the default connection's first (for what describes the whole app, e.g. AsyncApiDocument). */
  options(): ResolvedMessagingOptions[] {
    return this.discovery
      .getProviders()
      .filter((wrapper) => wrapper.token === MESSAGING_OPTIONS)
      .map((wrapper) => wrapper.instance as ResolvedMessagingOptions)
      .sort((a, b) => Number(b.name === DEFAULT_CONNECTION) - Number(a.name === DEFAULT_CONNECTION));
  }

  /** Fails startup when `own` is the name of another forRoot too, or a handler names an unknown connection. */
  check(own: string, handlers: DiscoveredHandler[]): void {
    const names = this.names();
    if (names.filter((name) => name === own).length > 1) {
      throw new MessagingConfigError(
        own === DEFAULT_CONNECTION
          ? 'MessagingModule.forRoot is imported more than once without a name: every handler would consume on each ' +
              'connection and which RpcClient a service gets would depend on Nest. Name all but one: ' +
              "MessagingModule.forRoot({ name: 'analytics', ... }), then @MessageHandler({ connection: 'analytics' }) and @InjectRpcClient('analytics')"
          : `MessagingModule.forRoot is imported more than once with the name "${own}": give each connection a name of its own`,
      );
    }
    const known = [...new Set(names)];
    for (const handler of handlers) {
      const connection = handler.options.connection ?? DEFAULT_CONNECTION;
      if (!known.includes(connection)) {
        const hint =
          connection === DEFAULT_CONNECTION
            ? 'every forRoot has a name: name the connection in @MessageHandler({ connection }), or import one forRoot without a name'
            : `import MessagingModule.forRoot({ name: '${connection}', ... }) or fix the name`;
        throw new MessagingConfigError(
          `${handler.name} consumes on the connection "${connection}", which no MessagingModule.forRoot made ` +
            `(connections: ${known.map((name) => `"${name}"`).join(', ')}): ${hint}`,
        );
      }
    }
  }
}
