import { type ArgumentsHost, Catch, type ExceptionFilter, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { ExchangeNotFoundError, MessagingError, RpcRemoteError, RpcTimeoutError, UnroutableError } from '../../lib';

/**
 * Turns the messaging library's errors into HTTP answers. Registered globally (APP_FILTER), so
 * with ROLE=all it also sees the workers' message handlers: those errors (`getType()` is
 * `'amqp'`) go on unchanged to the library, which retries or dead-letters the message.
 */
@Catch(MessagingError)
export class MessagingErrorsFilter implements ExceptionFilter {
  private readonly logger = new Logger(MessagingErrorsFilter.name);

  catch(error: MessagingError, host: ArgumentsHost): void {
    if (host.getType() !== 'http') throw error;
    const response = host.switchToHttp().getResponse<Response>();
    const { status, body } = this.describe(error);
    if (status >= 500) this.logger.warn(`${error.name}: ${error.message}`);
    response.status(status).json({ statusCode: status, ...body });
  }

  private describe(error: MessagingError): { status: number; body: Record<string, unknown> } {
    if (error instanceof RpcRemoteError) {
      // The worker refused the request (e.g. an unknown SKU): the caller's input is at fault.
      return { status: HttpStatus.UNPROCESSABLE_ENTITY, body: { error: error.remoteName, message: error.message } };
    }
    if (error instanceof RpcTimeoutError) {
      return { status: HttpStatus.GATEWAY_TIMEOUT, body: { error: error.name, message: error.message } };
    }
    if (error instanceof UnroutableError || error instanceof ExchangeNotFoundError) {
      // No worker has declared its queues yet (e.g. the API started first).
      return { status: HttpStatus.SERVICE_UNAVAILABLE, body: { error: error.name, message: 'No worker is ready to take this yet' } };
    }
    // Broker unreachable, publish timeout, shutting down...
    return { status: HttpStatus.SERVICE_UNAVAILABLE, body: { error: error.name, message: error.message } };
  }
}
