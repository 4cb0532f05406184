import { Inject, type InjectionToken } from '@nestjs/common';
import { connectionToken } from '../util/connection-token';
import { RpcClient } from './rpc-client';

/** The token of a connection's RpcClient (the class itself for the default one), e.g. for Test.createTestingModule overrides. */
export function getRpcClientToken(connection?: string): InjectionToken {
  return connectionToken(RpcClient, connection);
}

/** Injects the RpcClient of the connection `forRoot({ name: connection })` made; without a name, the default one. */
export const InjectRpcClient = (connection?: string): ParameterDecorator & PropertyDecorator => Inject(getRpcClientToken(connection));
