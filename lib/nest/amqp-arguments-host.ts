import type { ArgumentsHost, ContextType } from '@nestjs/common';
import type { MessageContext } from '../interfaces/message-context.interface';
import { MESSAGE_CONTEXT_TYPE } from './message-context-type';

type RpcArgumentsHost = ReturnType<ArgumentsHost['switchToRpc']>;
type HttpArgumentsHost = ReturnType<ArgumentsHost['switchToHttp']>;
type WsArgumentsHost = ReturnType<ArgumentsHost['switchToWs']>;

/**
 * What an exception filter gets for a message: `getType()` is `'amqp'`, `switchToRpc()` gives the
 * payload (`getData()`) and the MessageContext (`getContext()`). The other views read the same
 * arguments by position, as Nest's own host does.
 */
export class AmqpArgumentsHost implements ArgumentsHost {
  constructor(private readonly args: [payload: unknown, context: MessageContext, ...rest: unknown[]]) {}

  getType<T extends string = ContextType>(): T {
    return MESSAGE_CONTEXT_TYPE as T;
  }

  getArgs<T extends unknown[] = unknown[]>(): T {
    return this.args as unknown as T;
  }

  getArgByIndex<T = unknown>(index: number): T {
    return this.args[index] as T;
  }

  switchToRpc(): RpcArgumentsHost {
    return { getData: <T>() => this.args[0] as T, getContext: <T>() => this.args[1] as T };
  }

  switchToHttp(): HttpArgumentsHost {
    return {
      getRequest: <T>() => this.args[0] as T,
      getResponse: <T>() => this.args[1] as T,
      getNext: <T>() => this.args[2] as T,
    };
  }

  switchToWs(): WsArgumentsHost {
    return {
      getClient: <T>() => this.args[0] as T,
      getData: <T>() => this.args[1] as T,
      getPattern: () => this.args[this.args.length - 1] as string,
    };
  }
}
