import { messageParam, MessageParamType } from './message-param';

/** One header of the message (`undefined` when absent), or all of them without a name. */
export function MessageHeader(name?: string): ParameterDecorator {
  return messageParam(MessageParamType.HEADER, name);
}
