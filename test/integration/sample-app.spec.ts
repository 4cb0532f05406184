import { ConsoleLogger, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Message } from '../../lib/transport/transport.interface';
import type { ActivityLog } from '../../sample-app/worker/activity-log';
import type { FulfilmentService } from '../../sample-app/worker/fulfilment.service';
import type { Quote, Receipt } from '../../sample-app/messages';
import { testLogger } from '../support/app';
import { Broker, BROKER_URL, unique, waitFor } from '../support/broker';

/**
 * The sample app as a user runs it (ROLE=all: the HTTP API and a worker in one process), driven
 * over HTTP. QUEUE_PREFIX gives this run its own queue names ("t-sample-…."), through the sample's rename maps.
 */
describe('sample app (ROLE=all) over HTTP', () => {
  const prefix = `${unique('sample')}.`;
  let app: INestApplication;
  let base: string;
  let broker: Broker;
  let fulfilment: FulfilmentService;
  let activity: ActivityLog;
  const logger = new ExpectedErrorsMuted();

  beforeAll(async () => {
    broker = await Broker.open();
    const { AppModule } = await import('../../sample-app/app.module');
    const { loadConfig } = await import('../../sample-app/config');
    const worker = await import('../../sample-app/worker/fulfilment.service');
    const log = await import('../../sample-app/worker/activity-log');
    const config = loadConfig({
      ROLE: 'all',
      AMQP_URL: BROKER_URL,
      QUEUE_PREFIX: prefix,
      PORT: '0',
      SERVICE_NAME: 'sample-test',
      WORK_MS: '1-5',
      // Far above what an HTTP round trip takes on a loaded CI machine: the early answer below is told from the timeout by a wide margin.
      GATHER_TIMEOUT_MS: '2000',
      QUOTE_TIMEOUT_MS: '3000',
      LOG_EACH: '1',
    });
    app = await NestFactory.create(AppModule.register(config), { logger, abortOnError: false });
    await app.listen(0, '127.0.0.1');
    base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
    fulfilment = app.get(worker.FulfilmentService);
    activity = app.get(log.ActivityLog);
  });

  afterAll(async () => {
    await app?.close();
    await broker.cleanup(prefix);
  });

  async function http(method: string, path: string, body?: unknown, requestId?: string, headers: Record<string, string> = {}) {
    const response = await fetch(base + path, {
      method,
      headers: { 'content-type': 'application/json', ...(requestId ? { 'x-request-id': requestId } : {}), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: response.status, headers: response.headers, body: (await response.json()) as Record<string, any> };
  }

  /** Places an order and waits until the worker handled it. */
  async function placedOrder(sku = 'GADGET', quantity = 2) {
    const requestId = `req-${randomUUID()}`;
    const { status, body } = await http('POST', '/orders', { sku, quantity }, requestId);
    expect(status).toBe(202);
    await waitFor(() => fulfilment.find(body.orderId) !== undefined, `order ${body.orderId} handled`);
    return { orderId: body.orderId as string, messageId: body.messageId as string, requestId };
  }

  it('GET /health is 200 while connected and consuming', async () => {
    const { status, body } = await http('GET', '/health');
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'ok', connected: true });
  });

  it('POST /orders sends the orders.place command (202, message id); the worker sees the HTTP x-request-id', async () => {
    const requestId = `req-${randomUUID()}`;
    const { status, headers, body } = await http('POST', '/orders', { sku: 'WIDGET', quantity: 4 }, requestId);
    expect(status).toBe(202);
    expect(headers.get('x-request-id')).toBe(requestId);
    expect(body).toEqual({ orderId: expect.stringMatching(/^ord-/), messageId: expect.any(String), requestId });

    await waitFor(() => fulfilment.find(body.orderId) !== undefined, 'the worker to handle the order');
    expect(fulfilment.find(body.orderId)).toMatchObject({ sku: 'WIDGET', quantity: 4, attempt: 1, requestId });

    // Without a header, the API makes an id up and still hands it on.
    const anonymous = await http('POST', '/orders', { sku: 'WIDGET', quantity: 1 });
    expect(anonymous.status).toBe(202);
    expect(anonymous.headers.get('x-request-id')).toBe(anonymous.body.requestId);
    await waitFor(() => fulfilment.find(anonymous.body.orderId) !== undefined, 'the anonymous order');
    expect(fulfilment.find(anonymous.body.orderId)?.requestId).toBe(anonymous.body.requestId);

    expect((await http('POST', '/orders', { sku: 'WIDGET' })).status).toBe(400);
  });

  it('retries a failing order (FLAKY: try 2 succeeds) and dead-letters an invalid one (quantity 0) at once', async () => {
    const flaky = await http('POST', '/orders', { sku: 'FLAKY', quantity: 1 });
    const zero = await http('POST', '/orders', { sku: 'WIDGET', quantity: 0 }, 'req-zero-quantity');
    expect([flaky.status, zero.status]).toEqual([202, 202]);

    const dlq = `${prefix}orders.place.dlq`;
    const deadLettered: Message[] = [];
    await waitFor(async () => {
      deadLettered.push(...(await broker.drainQueue(dlq)));
      return deadLettered.some((m) => m.properties.messageId === zero.body.messageId);
    }, 'the quantity-0 order in the dead-letter queue');
    // Refused by the worker's ValidationPipe (PlaceOrder: quantity >= 1), on the first try.
    const dead = deadLettered.find((m) => m.properties.messageId === zero.body.messageId)!;
    expect(JSON.parse(dead.content.toString())).toMatchObject({ orderId: zero.body.orderId, quantity: 0 });
    expect(dead.properties.headers).toMatchObject({
      'x-error-name': 'BadRequestException',
      'x-error-message': expect.stringContaining('quantity must not be less than 1'),
      'x-attempts': 1,
      'x-original-queue': `${prefix}orders.place`,
      'x-request-id': 'req-zero-quantity',
    });
    expect(fulfilment.find(zero.body.orderId)).toBeUndefined();

    await waitFor(() => fulfilment.find(flaky.body.orderId) !== undefined, 'the FLAKY order on its retry', 5_000);
    expect(fulfilment.find(flaky.body.orderId)?.attempt).toBe(2);
  });

  it("the workers' TenantGuard takes the orders of a served tenant (x-tenant) and dead-letters the others; the timing interceptor logs each with its request id", async () => {
    const served = await http('POST', '/orders', { sku: 'WIDGET', quantity: 1 }, 'req-tenant-acme', { 'x-tenant': 'acme' });
    const foreign = await http('POST', '/orders', { sku: 'WIDGET', quantity: 1 }, 'req-tenant-initech', { 'x-tenant': 'initech' });
    expect([served.status, foreign.status]).toEqual([202, 202]);
    expect((await http('POST', '/orders', { sku: 'WIDGET', quantity: 1 }, undefined, { 'x-tenant': 'no tenant' })).status).toBe(400);

    const dlq = `${prefix}orders.place.dlq`;
    const deadLettered: Message[] = [];
    await waitFor(async () => {
      deadLettered.push(...(await broker.drainQueue(dlq)));
      return deadLettered.some((m) => m.properties.messageId === foreign.body.messageId);
    }, "the foreign tenant's order in the dead-letter queue");
    const dead = deadLettered.find((m) => m.properties.messageId === foreign.body.messageId)!;
    expect(dead.properties.headers).toMatchObject({
      'x-error-name': 'ForbiddenException',
      'x-attempts': 1,
      'x-track-tenant': 'initech',
      'x-request-id': 'req-tenant-initech',
    });
    await waitFor(() => fulfilment.find(served.body.orderId) !== undefined, "the served tenant's order");
    expect(fulfilment.find(served.body.orderId)).toMatchObject({ requestId: 'req-tenant-acme', attempt: 1 });
    expect(fulfilment.find(foreign.body.orderId)).toBeUndefined();
    await waitFor(
      () => logger.lines.some((line) => /^\[req-tenant-acme\] \S*orders\.place: \d+ ms$/.test(line)),
      'the timing line of the served order',
    );
  });

  it('GET /orders/:id/quote is a request/response; the request-scoped QuoteSession is new for every message', async () => {
    const order = await placedOrder('GIZMO', 3);
    const first = await http('GET', `/orders/${order.orderId}/quote`, undefined, order.requestId);
    const second = await http('GET', `/orders/${order.orderId}/quote`, undefined, 'req-second-quote');
    expect([first.status, second.status]).toEqual([200, 200]);
    const quote = first.body as Quote;
    expect(quote).toMatchObject({ sku: 'GIZMO', quantity: 3, unitPrice: 99.9, total: 299.7, requestId: order.requestId });
    expect(second.body.requestId).toBe('req-second-quote');
    expect(second.body.quoteId).not.toBe(quote.quoteId);

    expect((await http('GET', '/orders/ord-nope/quote')).status).toBe(404);
    // The pricing worker refuses an unknown SKU with a 422: MessagingHttpExceptionFilter answers with it.
    const unknown = await http('POST', '/orders', { sku: 'NOPE', quantity: 1 });
    const refused = await http('GET', `/orders/${unknown.body.orderId}/quote`);
    expect(refused).toMatchObject({ status: 422, body: { statusCode: 422, error: 'Unprocessable Entity', message: 'Unknown SKU "NOPE"' } });
  });

  it('POST /orders/:id/ship publishes order.shipped; billing and notifications each get one copy', async () => {
    const order = await placedOrder();
    const { status, body } = await http('POST', `/orders/${order.orderId}/ship`, undefined, order.requestId);
    expect(status).toBe(202);
    await waitFor(() => activity.forOrder(order.orderId).length >= 2, 'both subscriber groups');
    await new Promise((resolve) => setTimeout(resolve, 200)); // a third copy would have come by now
    const seen = activity.forOrder(order.orderId);
    expect(seen.map((a) => a.kind).sort()).toEqual(['billing.charged', 'customer.notified']);
    for (const entry of seen) expect(entry).toMatchObject({ eventId: body.messageId, requestId: order.requestId });
  });

  it('GET /inventory gathers one report per running worker (one here)', async () => {
    const order = await placedOrder('GADGET', 5);
    const started = Date.now();
    const all = await http('GET', '/inventory');
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_950); // waited GATHER_TIMEOUT_MS for more workers
    expect(all.status).toBe(200);
    expect(all.body.workers).toBe(1);
    expect(all.body.reports[0]).toMatchObject({ worker: fulfilment.find(order.orderId)!.worker });
    expect(all.body.reserved.GADGET).toBeGreaterThanOrEqual(5);

    const early = Date.now();
    const one = await http('GET', '/inventory?expect=1');
    expect(one.body.workers).toBe(1);
    expect(Date.now() - early).toBeLessThan(1_500); // returned at the first answer, long before GATHER_TIMEOUT_MS
  });

  it('POST /orders/:id/receipt is an async request/response: the receipt comes back on orders.receipts', async () => {
    const order = await placedOrder('WIDGET', 2);
    expect((await http('GET', `/orders/${order.orderId}/receipt`)).status).toBe(404);
    const asked = await http('POST', `/orders/${order.orderId}/receipt`, undefined, order.requestId);
    expect(asked.status).toBe(202);
    expect(asked.body.messageId).toEqual(expect.any(String));

    let answer = await http('GET', `/orders/${order.orderId}/receipt`);
    await waitFor(async () => (answer = await http('GET', `/orders/${order.orderId}/receipt`)).status === 200, 'the receipt');
    const receipt = answer.body as Receipt;
    expect(receipt).toMatchObject({ orderId: order.orderId, total: 5, requestId: order.requestId });
    expect(receipt.receiptId).toMatch(/^rcpt-/);

    // A handler that throws answers with its error, which the API shows.
    const unknown = await http('POST', '/orders', { sku: 'NOPE', quantity: 1 });
    await http('POST', `/orders/${unknown.body.orderId}/receipt`);
    await waitFor(async () => (answer = await http('GET', `/orders/${unknown.body.orderId}/receipt`)).status === 422, 'the failure');
    expect(answer.body).toMatchObject({ error: 'UnknownSkuError' });
  });
});

/** Test runs print only unexpected errors: the sample dead-letters orders on purpose. */
class ExpectedErrorsMuted extends ConsoleLogger {
  /** Every line logged at level "log" (shown only with DEBUG_LOGS). */
  readonly lines: string[] = [];

  constructor() {
    super('', { logLevels: testLogger() || [] });
  }

  override error(message: unknown, ...rest: unknown[]): void {
    if (/UnrecoverableError|Unknown SKU|BadRequestException|ForbiddenException/.test(String(message))) return;
    super.error(message, ...rest);
  }

  override log(message: unknown, ...rest: unknown[]): void {
    this.lines.push(String(message));
    super.log(message, ...rest);
  }
}
