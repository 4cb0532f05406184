import { messageParam, MessageParamType, type ParamPipe } from './message-param';

/**
 * The message's payload, or one property of it, passed through `pipes` after the handler's own
 * and the global ones: `@Payload() order: PlaceOrderDto`, `@Payload('sku') sku: string`,
 * `@Payload(new ParseIntPipe())`.
 */
export function Payload(): ParameterDecorator;
export function Payload(...pipes: ParamPipe[]): ParameterDecorator;
export function Payload(property?: string, ...pipes: ParamPipe[]): ParameterDecorator;
export function Payload(propertyOrPipe?: string | ParamPipe, ...pipes: ParamPipe[]): ParameterDecorator {
  return typeof propertyOrPipe === 'string' || propertyOrPipe === undefined
    ? messageParam(MessageParamType.PAYLOAD, propertyOrPipe, pipes)
    : messageParam(MessageParamType.PAYLOAD, undefined, [propertyOrPipe, ...pipes]);
}
