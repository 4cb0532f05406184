import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Controller, Get, Injectable, Module, Query, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Request } from 'express';
import { ClsModule, ClsService } from 'nestjs-cls';
import { MessageHandler, MessagingModule, RpcClient, TrackContext, type MessageContext } from '../../lib';
import { testLogger } from '../support/app';
import { BROKER_URL, Broker, unique, waitFor } from '../support/broker';

/**
 * The per-message scope when the app has its own nestjs-cls context: an HTTP request handled under
 * ClsModule's middleware (with generateId/idGenerator) sends messages that carry its id and
 * items; sends from no context get a fresh id each.
 */

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

const queue = unique('scope-http');

interface Seen {
  label: string;
  requestId?: string;
  items: Record<string, string>;
  causationId?: string;
  headers: Record<string, unknown>;
}
const seen = new Map<string, Seen>();

@Injectable()
class HttpHandlers {
  constructor(private readonly track: TrackContext) {}

  @MessageHandler({ queue, prefetch: 50 })
  handle(payload: { label: string }, context: MessageContext) {
    seen.set(payload.label, {
      label: payload.label,
      requestId: this.track.requestId,
      items: this.track.items(),
      causationId: this.track.causationId,
      headers: { ...context.headers },
    });
  }
}

interface SendResponse {
  requestId?: string;
  afterSend?: string;
  clsId?: string;
  messageIds: string[];
}

@Controller('orders')
class OrdersController {
  constructor(
    private readonly rpc: RpcClient,
    private readonly track: TrackContext,
    private readonly cls: ClsService,
  ) {}

  /** Sends `count` messages labelled `<label>-<i>`; sets the tenant item first when given. */
  @Get('send')
  async send(@Query('label') label: string, @Query('tenant') tenant?: string, @Query('count') count = '1'): Promise<SendResponse> {
    const requestId = this.track.requestId;
    if (tenant) this.track.set('tenant', tenant);
    const messageIds: string[] = [];
    for (let i = 0; i < Number(count); i++) messageIds.push(await this.rpc.send(queue, { label: `${label}-${i}` }));
    return { requestId, afterSend: this.track.requestId, clsId: this.cls.getId(), messageIds };
  }
}

@Module({
  imports: [
    ClsModule.forRoot({
      global: true,
      middleware: {
        mount: true,
        generateId: true,
        idGenerator: (req: Request) => (req.headers['x-request-id'] as string | undefined) ?? randomUUID(),
      },
    }),
    MessagingModule.forRoot({ uri: BROKER_URL }),
  ],
  controllers: [OrdersController],
  providers: [HttpHandlers],
})
class HttpAppModule {}

describe('per-message scope with an HTTP app under nestjs-cls middleware', () => {
  let broker: Broker;
  let app: INestApplication;
  let base: string;

  async function get(path: string, headers: Record<string, string> = {}): Promise<SendResponse> {
    const response = await fetch(`${base}${path}`, { headers, signal: AbortSignal.timeout(10_000) });
    const body = await response.text();
    if (response.status !== 200) throw new Error(`GET ${path} answered ${response.status}: ${body}`);
    return JSON.parse(body) as SendResponse;
  }

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(queue);
    app = await NestFactory.create(HttpAppModule, { logger: testLogger(), abortOnError: false });
    await app.listen(0, '127.0.0.1');
    const { port } = app.getHttpServer().address() as AddressInfo;
    base = `http://127.0.0.1:${port}`;
  });

  afterAll(async () => {
    await app?.close();
    await broker?.cleanup();
  });

  it('x-request-id http-1: TrackContext.requestId in the controller is http-1 and the handler sees http-1', async () => {
    const response = await get('/orders/send?label=h1', { 'x-request-id': 'http-1' });
    expect(response).toMatchObject({ requestId: 'http-1', afterSend: 'http-1', clsId: 'http-1' });
    await waitFor(() => seen.has('h1-0'), 'the message sent from the HTTP request');
    const message = seen.get('h1-0')!;
    expect(message.requestId).toBe('http-1');
    expect(message.headers['x-request-id']).toBe('http-1');
    // An HTTP request is not a message: nothing caused the message but the request itself.
    expect(message.causationId).toBeUndefined();
    expect(message.items).toEqual({});
  }, 15_000);

  it('items set in the controller go with every message of that request, and not with the next request', async () => {
    const response = await get('/orders/send?label=h2&tenant=acme&count=2', { 'x-request-id': 'http-2' });
    expect(response.requestId).toBe('http-2');
    await get('/orders/send?label=h3', { 'x-request-id': 'http-3' });
    await waitFor(() => seen.has('h2-0') && seen.has('h2-1') && seen.has('h3-0'), 'the messages of two requests');
    for (const label of ['h2-0', 'h2-1']) {
      expect(seen.get(label)).toMatchObject({ requestId: 'http-2', items: { tenant: 'acme' } });
    }
    expect(seen.get('h3-0')).toMatchObject({ requestId: 'http-3', items: {} });
  }, 15_000);

  it("without an x-request-id the idGenerator's UUID is the request id, shared by the controller and the handler", async () => {
    const one = await get('/orders/send?label=g1');
    const two = await get('/orders/send?label=g2');
    expect(one.requestId).toMatch(UUID);
    expect(two.requestId).toMatch(UUID);
    expect(one.requestId).not.toBe(two.requestId);
    await waitFor(() => seen.has('g1-0') && seen.has('g2-0'), 'the messages of two requests without ids');
    expect(seen.get('g1-0')!.requestId).toBe(one.requestId);
    expect(seen.get('g2-0')!.requestId).toBe(two.requestId);
  }, 15_000);

  it('50 concurrent HTTP requests with distinct ids and tenants: each message carries only its own', async () => {
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => get(`/orders/send?label=c${i}&tenant=tenant-${i}&count=2`, { 'x-request-id': `http-c-${i}` })),
    );
    responses.forEach((response, i) => expect(response.requestId).toBe(`http-c-${i}`));
    await waitFor(() => Array.from({ length: 50 }, (_, i) => seen.has(`c${i}-1`)).every(Boolean), '100 messages of 50 requests');
    const mismatches: string[] = [];
    for (let i = 0; i < 50; i++) {
      for (const label of [`c${i}-0`, `c${i}-1`]) {
        const message = seen.get(label)!;
        if (message.requestId !== `http-c-${i}` || message.items.tenant !== `tenant-${i}` || Object.keys(message.items).length !== 1) {
          mismatches.push(`${label}: ${JSON.stringify({ requestId: message.requestId, items: message.items })}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
  }, 20_000);

  it('an over-long HTTP x-request-id does not break sending; the handler gets a valid id of at most 256 characters', async () => {
    const long = 'L'.repeat(2000);
    const response = await get('/orders/send?label=long', { 'x-request-id': long });
    expect(response.messageIds).toHaveLength(1);
    await waitFor(() => seen.has('long-0'), 'the message sent from the request with a long id');
    const id = seen.get('long-0')!.requestId!;
    expect(id.length).toBeLessThanOrEqual(256);
    expect(id).not.toBe(long);
  }, 15_000);

  it('sent from outside any context (the test itself): a fresh UUID x-request-id, a different one per send', async () => {
    const client = app.get(RpcClient);
    const track = app.get(TrackContext);
    expect(track.requestId).toBeUndefined();
    await client.send(queue, { label: 'out-1' });
    await client.send(queue, { label: 'out-2' });
    await waitFor(() => seen.has('out-1') && seen.has('out-2'), 'two messages sent from outside any context');
    const one = seen.get('out-1')!;
    const two = seen.get('out-2')!;
    for (const message of [one, two]) {
      expect(message.requestId).toMatch(UUID);
      expect(message.headers['x-request-id']).toBe(message.requestId);
      expect(message.items).toEqual({});
      expect(message.causationId).toBeUndefined();
    }
    expect(one.requestId).not.toBe(two.requestId);
    // Still outside: the HTTP requests above left nothing behind in the test's own context.
    expect(track.requestId).toBeUndefined();
  }, 15_000);
});
