/** `ExecutionContext.getType()` / `ArgumentsHost.getType()` while a message is handled. */
export const MESSAGE_CONTEXT_TYPE = 'amqp';
