import { AsyncLocalStorage } from 'node:async_hooks';
import { ClsService } from 'nestjs-cls';
import type { MessageContext } from '../../lib/interfaces/message-context.interface';
import type { HandlerDefinition } from '../../lib/topology/handler-definition';
import { BatchCollector } from '../../lib/consumer/batch-collector';
import { type Invoker, QueueRoutes } from '../../lib/consumer/queue-routes';

const LIMITS = { maxRequestIdLength: 200, maxItems: 50, maxKeyLength: 100, maxValueLength: 1000 };

/** A batch handler that records the payloads of each call; the collector waits a minute unless made to run. */
function batchHandler() {
  const calls: unknown[][] = [];
  const handler: Invoker = { invoke: (payloads) => void calls.push(payloads as unknown[]) };
  const collector = new BatchCollector(handler, 10, 60_000, new ClsService(new AsyncLocalStorage()), LIMITS);
  return { calls, collector };
}

function context(type?: string): MessageContext {
  return { routingKey: 'q', raw: { properties: { type } } } as unknown as MessageContext;
}

/** RELIABILITY.md 55, the pure part: what a stop hands to the handler, and that no timer is left. */
describe('BatchCollector at shutdown', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('stop() runs the partial batch at once and clears its timer', () => {
    const { calls, collector } = batchHandler();
    void collector.invoke(1, context());
    void collector.invoke(2, context());
    expect(vi.getTimerCount()).toBe(1);
    collector.stop();
    expect(calls).toEqual([[1, 2]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a message reaching the collector after stop() (its decode finished late) runs at once, with no timer', () => {
    const { calls, collector } = batchHandler();
    collector.stop();
    void collector.invoke(3, context());
    expect(calls).toEqual([[3]]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('behind messageType routing, stop() reaches the collector of each route', () => {
    const orders = batchHandler();
    const refunds = batchHandler();
    const definition = (messageType: string) => ({ name: messageType, messageType, routingPatterns: [] }) as unknown as HandlerDefinition;
    const routes = new QueueRoutes('q', [
      { definition: definition('order'), invoker: orders.collector },
      { definition: definition('refund'), invoker: refunds.collector },
    ]);
    void routes.invoke(1, context('order'));
    void routes.invoke(2, context('refund'));
    void routes.invoke(3, context('order'));
    routes.stop();
    expect({ orders: orders.calls, refunds: refunds.calls }).toEqual({ orders: [[1, 3]], refunds: [[2]] });
    expect(vi.getTimerCount()).toBe(0);
  });
});
