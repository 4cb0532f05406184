import { Observable } from 'rxjs';
import { CONVENTIONAL_ARGS_METADATA, MessageParamType } from '../decorators/message-param';
import type { MessageHandlerOptions } from '../interfaces/message-handler-options.interface';
import { hasRouteArgs, ROUTE_ARGS_KEY, type RouteArgs } from '../nest/nest-internals';

/**
 * What the document describes a handler's message and answer from: a class, a built-in type or a
 * JSON Schema; undefined is an unknown value. No `reply`: the handler answers nothing.
 */
export interface HandlerTypes {
  payload: unknown;
  reply?: { payload: unknown };
}

/**
 * Read from the method's TypeScript metadata (`emitDecoratorMetadata`): the type of the parameter
 * that takes the whole payload (`@Payload()`, or the first one by convention), and the return
 * type. The handler's `schema` and `reply` options win over them.
 */
export function handlerTypes(
  classRef: object,
  methodName: string,
  options: Pick<MessageHandlerOptions, 'schema' | 'reply' | 'batch'>,
): HandlerTypes {
  const prototype = (classRef as { prototype: object }).prototype;
  const params: unknown[] = Reflect.getMetadata('design:paramtypes', prototype, methodName) ?? [];
  const key = hasRouteArgs(classRef, methodName) ? ROUTE_ARGS_KEY : CONVENTIONAL_ARGS_METADATA;
  const args: RouteArgs = Reflect.getMetadata(key, classRef, methodName) ?? {};
  const whole = Object.entries(args).find(([id, arg]) => id.split(':')[0] === String(MessageParamType.PAYLOAD) && arg.data === undefined);
  // A batch handler takes an array of payloads: the type of one message is not in the metadata.
  const payload = options.schema ?? (options.batch || !whole ? undefined : params[whole[1].index]);
  const returned: unknown = Reflect.getMetadata('design:returntype', prototype, methodName);
  const reply = replyOf(options.reply, returned);
  return reply === undefined ? { payload } : { payload, reply };
}

/**
 * What the handler answers. The metadata says `undefined` for `void`, and only `Promise` or
 * `Observable` for an async method or one returning an Observable, whatever it resolves to: such
 * a handler answers only when its `reply` option says so (most of them are `Promise<void>`).
 */
function replyOf(option: MessageHandlerOptions['reply'], returned: unknown): HandlerTypes['reply'] {
  const told = returned === undefined || returned === Promise || returned === Observable ? undefined : returned;
  if (option === false) return undefined;
  if (option === true) return { payload: told };
  if (option !== undefined) return { payload: option };
  return told === undefined ? undefined : { payload: told };
}
