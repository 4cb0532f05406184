import { isMemoryUrl } from '../util/url';
import { amqpTransport } from './amqp/amqp.transport';
import { memoryTransport } from './memory/memory.transport';
import type { Transport } from './transport.interface';

/** `memory://` runs on the in-process broker; `amqp://` and `amqps://` on RabbitMQ. */
export function transportFor(url: string): Transport {
  return isMemoryUrl(url) ? memoryTransport : amqpTransport;
}
