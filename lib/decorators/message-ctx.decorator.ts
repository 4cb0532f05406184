import { messageParam, MessageParamType } from './message-param';

/** The MessageContext of the message being handled. */
export function MessageCtx(): ParameterDecorator {
  return messageParam(MessageParamType.CONTEXT);
}
