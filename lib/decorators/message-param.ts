import type { PipeTransform, Type } from '@nestjs/common';
import { addRouteArg, BODY_PARAM_TYPE, routeArg } from '../nest/nest-internals';

/**
 * What a handler parameter receives. Stored under Nest's own route-arguments key, beside what
 * `createParamDecorator` writes, so custom param decorators work on handlers too. PAYLOAD has the
 * number of Nest's BODY: pipes see the payload as `type: 'body'` (ValidationPipe validates it);
 * the others read as `'custom'`.
 */
export enum MessageParamType {
  PAYLOAD = BODY_PARAM_TYPE,
  CONTEXT = 6,
  HEADER = 7,
}

export type ParamPipe = Type<PipeTransform> | PipeTransform;

/** Records that parameter `index` of the decorated method receives `type` (with `data`, through `pipes`). */
export function messageParam(type: MessageParamType, data?: string, pipes: ParamPipe[] = []): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) return;
    addRouteArg(target.constructor, key, type, index, data, pipes);
  };
}

/**
 * The arguments of a handler without param decorators, `(payload, context)`, in the same form:
 * pipes then see the payload with its declared class as `metatype`.
 */
export const CONVENTIONAL_ARGS_METADATA = 'nestjs-messaging:conventional-args';
export const CONVENTIONAL_ARGS = { ...routeArg(MessageParamType.PAYLOAD, 0), ...routeArg(MessageParamType.CONTEXT, 1) };
