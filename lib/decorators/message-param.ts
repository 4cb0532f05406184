import { ROUTE_ARGS_METADATA } from '@nestjs/common/constants';
import type { PipeTransform, Type } from '@nestjs/common';

/**
 * What a handler parameter receives. Stored under Nest's own route-arguments key, beside what
 * `createParamDecorator` writes, so custom param decorators work on handlers too. PAYLOAD has the
 * number of Nest's BODY: pipes see the payload as `type: 'body'` (ValidationPipe validates it);
 * the others read as `'custom'`.
 */
export enum MessageParamType {
  PAYLOAD = 3,
  CONTEXT = 6,
  HEADER = 7,
}

export type ParamPipe = Type<PipeTransform> | PipeTransform;

/** Records that parameter `index` of the decorated method receives `type` (with `data`, through `pipes`). */
export function messageParam(type: MessageParamType, data?: string, pipes: ParamPipe[] = []): ParameterDecorator {
  return (target, key, index) => {
    if (key === undefined) return;
    const args: Record<string, unknown> = Reflect.getMetadata(ROUTE_ARGS_METADATA, target.constructor, key) ?? {};
    Reflect.defineMetadata(ROUTE_ARGS_METADATA, { ...args, [`${type}:${index}`]: { index, data, pipes } }, target.constructor, key);
  };
}

/**
 * The arguments of a handler without param decorators, `(payload, context)`, in the same form:
 * pipes then see the payload with its declared class as `metatype`.
 */
export const CONVENTIONAL_ARGS_METADATA = 'nestjs-messaging:conventional-args';
export const CONVENTIONAL_ARGS = {
  [`${MessageParamType.PAYLOAD}:0`]: { index: 0, data: undefined, pipes: [] },
  [`${MessageParamType.CONTEXT}:1`]: { index: 1, data: undefined, pipes: [] },
};
