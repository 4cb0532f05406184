import { MESSAGE_HANDLER_METADATA } from '../messaging.constants';
import type { MessageHandlerOptions } from '../interfaces/message-handler-options.interface';

/**
 * Marks a provider or controller method as the consumer of a queue. Stacking it consumes
 * several queues with the same method.
 */
export function MessageHandler(queueOrOptions: string | MessageHandlerOptions): MethodDecorator {
  const options: MessageHandlerOptions =
    typeof queueOrOptions === 'string' ? { queue: queueOrOptions } : { ...queueOrOptions };
  return (_target, _key, descriptor) => {
    const previous: MessageHandlerOptions[] = Reflect.getMetadata(MESSAGE_HANDLER_METADATA, descriptor.value as object) ?? [];
    Reflect.defineMetadata(MESSAGE_HANDLER_METADATA, [...previous, options], descriptor.value as object);
    return descriptor;
  };
}
