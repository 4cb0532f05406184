import type { InjectionToken, Type } from '@nestjs/common';
import { DEFAULT_CONNECTION } from '../messaging.constants';

/**
 * The injection token of one of a connection's public services: the class itself for the default
 * connection (so `constructor(rpc: RpcClient)` keeps working), a name of its own for a named one.
 */
export function connectionToken(service: Type<unknown>, connection: string = DEFAULT_CONNECTION): InjectionToken {
  return connection === DEFAULT_CONNECTION ? service : `nestjs-messaging:${service.name}:${connection}`;
}
