import type { ParamData } from '@nestjs/common';
import type { ParamsFactory } from '@nestjs/core';
import { own } from '../util/own-headers';
import { MessageParamType } from '../decorators/message-param';
import type { MessageContext } from '../interfaces/message-context.interface';

/** What each param decorator of a handler receives, from the call's `(payload, context)`. */
export class MessageParamsFactory implements ParamsFactory {
  exchangeKeyForValue(type: number, data: ParamData, args: unknown[]): unknown {
    const [payload, context] = args as [unknown, MessageContext];
    switch (type) {
      case MessageParamType.PAYLOAD:
        return data === undefined ? payload : propertyOf(payload, String(data));
      case MessageParamType.CONTEXT:
        return context;
      case MessageParamType.HEADER:
        return data === undefined ? context.headers : own(context.headers, String(data));
      default:
        return undefined;
    }
  }
}

/** Own properties only: a payload comes from anyone, its prototype's members are not its data. */
function propertyOf(payload: unknown, property: string): unknown {
  return typeof payload === 'object' && payload !== null ? own(payload as Record<string, unknown>, property) : undefined;
}
