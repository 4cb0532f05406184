import { MESSAGE_HANDLER_METADATA } from '../messaging.constants';
import type { MessageHandlerOptions } from '../interfaces/message-handler-options.interface';
import { markEntryProvider } from '../nest/nest-internals';
import { CONVENTIONAL_ARGS, CONVENTIONAL_ARGS_METADATA } from './message-param';
import { rememberHandlerClass } from './handler-classes';

/**
 * Marks a provider or controller method as the consumer of a queue. Stacking it consumes
 * several queues with the same method.
 *
 * The class becomes one of Nest's entry providers (as gateways are): global request-scoped
 * enhancers then apply to it per message, like they do to controllers.
 */
export function MessageHandler(queueOrOptions: string | MessageHandlerOptions): MethodDecorator {
  const options: MessageHandlerOptions = typeof queueOrOptions === 'string' ? { queue: queueOrOptions } : { ...queueOrOptions };
  return (target, key, descriptor) => {
    const previous: MessageHandlerOptions[] = Reflect.getMetadata(MESSAGE_HANDLER_METADATA, descriptor.value as object) ?? [];
    Reflect.defineMetadata(MESSAGE_HANDLER_METADATA, [...previous, options], descriptor.value as object);
    Reflect.defineMetadata(CONVENTIONAL_ARGS_METADATA, CONVENTIONAL_ARGS, target.constructor, key);
    markEntryProvider(target.constructor);
    rememberHandlerClass(target.constructor);
    return descriptor;
  };
}
