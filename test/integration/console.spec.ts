import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type CanActivate, type ExecutionContext, Injectable, type INestApplication, Module, type Type } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { DeadLetters, MessageHandler, MessagingConfigError, MessagingModule, RpcClient, UnrecoverableError } from '../../lib';
import { MessagingConsoleModule } from '../../lib/console';
import { testLogger } from '../support/app';
import { launchChromium } from '../support/browser';
import { Broker, BROKER_URL, deferred, ON_MEMORY, unique, waitFor } from '../support/broker';
import { CaptureLogger } from '../support/capture-logger';

/** The header the tests' auth guard lets in. */
const OPERATOR = { 'x-operator': 'on-call' };

@Injectable()
class OperatorGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    return context.switchToHttp().getRequest<{ headers: Record<string, unknown> }>().headers['x-operator'] === OPERATOR['x-operator'];
  }
}

/** Starts an HTTP app on a free port of 127.0.0.1; returns it and its base URL. */
async function listen(module: Type<unknown>, logger: CaptureLogger | ReturnType<typeof testLogger> = testLogger()) {
  const app = await NestFactory.create(module, { logger, abortOnError: false });
  await app.listen(0, '127.0.0.1');
  return { app, origin: `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}` };
}

/**
 * The console in a real browser (Debian's Chromium, driven by playwright-core), on the in-memory
 * broker and on RabbitMQ: its pages, a dead letter found and replayed, hostile message content
 * shown as text, the auth guard and the CSRF check; and the order of a dead-letter queue kept
 * through browsing, deleting and replaying, on classic and quorum queues.
 */
describe('operator console in Chromium', () => {
  const orders = unique('console-orders');
  const hostile = `t-console-<img src=q onerror=alert(5)>-${randomBytes(3).toString('hex')}`;
  const audit = unique('console-audit');
  const ordered = unique('console-order');
  const orderedQuorum = unique('console-order-qq');
  const doomed = unique('console-doomed');
  const path = '/ops/messaging';
  /** A letter no test replays or deletes: what the hostile-content, auth and CSRF tests look at. */
  const HOSTILE = {
    body: '<img src=x onerror=alert(1)>',
    headerName: '<script>alert(3)</script>',
    headerValue: '<img src=y onerror=alert(4)>',
  };
  let broken = true;
  const handled: number[] = [];
  let handledNext = deferred<number>();
  /** Messages of the ordered queues that pass; every other one is dead-lettered at once. */
  const passing = new Set<number>();

  @Injectable()
  class Handlers {
    @MessageHandler({ queue: orders, retry: { attempts: 2, delaysMs: [10] } })
    place({ n }: { n: number }) {
      if (broken) throw new Error(`payment service down for order ${n}`);
      handled.push(n);
      handledNext.resolve(n);
    }

    @MessageHandler({ queue: hostile, retry: false })
    refuse() {
      throw new UnrecoverableError('<img src=z onerror=alert(2)>');
    }

    @MessageHandler({ queue: doomed, retry: false })
    doom({ reason }: { reason: string }) {
      throw new UnrecoverableError(reason);
    }

    @MessageHandler({ queue: ordered, retry: false })
    classic({ n }: { n: number }) {
      if (!passing.has(n)) throw new UnrecoverableError(`letter ${n}`);
      handled.push(n);
    }

    @MessageHandler({ queue: orderedQuorum, queueType: 'quorum', retry: false })
    quorum({ n }: { n: number }) {
      if (!passing.has(n)) throw new UnrecoverableError(`letter ${n}`);
      handled.push(n);
    }
  }

  @Injectable()
  class Audit {
    @MessageHandler({ queue: audit, connection: 'audit', retry: false })
    record() {}
  }

  @Module({
    imports: [
      MessagingModule.forRoot({ uri: BROKER_URL, serviceName: 'console-test' }),
      MessagingModule.forRoot({ name: 'audit', uri: BROKER_URL, serviceName: 'console-test-audit' }),
      MessagingConsoleModule.forRoot({ path, guard: OperatorGuard }),
    ],
    providers: [Handlers, Audit],
  })
  class ConsoleApp {}

  let broker: Broker;
  let app: INestApplication;
  let base: string;
  let browser: Browser;
  let operator: BrowserContext;

  beforeAll(async () => {
    broker = await Broker.open();
    broker.queue(orders, [10]);
    for (const queue of [hostile, audit, ordered, orderedQuorum, doomed]) broker.queue(queue, []);
    browser = await launchChromium();
    const started = await listen(ConsoleApp);
    app = started.app;
    base = `${started.origin}${path}`;
    operator = await browser.newContext({ extraHTTPHeaders: OPERATOR, viewport: { width: 1280, height: 900 } });
    broker.publishRaw(hostile, HOSTILE.body, {
      contentType: 'text/plain',
      messageId: 'hostile-1',
      headers: { [HOSTILE.headerName]: HOSTILE.headerValue },
    });
    await waitFor(async () => (await broker.depth(`${hostile}.dlq`)) === 1, 'the hostile dead letter');
  }, 60_000);
  afterAll(async () => {
    await operator?.close();
    await browser?.close();
    await app?.close();
    await broker?.cleanup();
  });

  /** A page of the operator's that fails the test on any dialog (an alert from injected script). */
  async function operatorPage(): Promise<{ page: Page; dialogs: string[] }> {
    const page = await operator.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    return { page, dialogs };
  }

  const lettersUrl = (queue: string, page?: number) =>
    `${base}/dead-letters?connection=default&queue=${encodeURIComponent(queue)}${page ? `&page=${page}` : ''}`;

  it('lists every handler of every connection with its queue, retry policy and dead letters', async () => {
    const { page } = await operatorPage();
    const response = await page.goto(base);
    expect(response?.status()).toBe(200);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Handlers and queues');
    await expect(page.getByRole('heading', { name: 'Connection “default”' }).count()).resolves.toBe(1);
    await expect(page.getByRole('heading', { name: 'Connection “audit”' }).count()).resolves.toBe(1);
    const row = page.locator('tr', { hasText: orders });
    await expect(row.locator('td').first().textContent()).resolves.toBe('Handlers.place');
    await expect(row.textContent()).resolves.toContain('2 tries, waiting 10 ms');
    await expect(page.locator('tr', { hasText: orderedQuorum }).textContent()).resolves.toContain('quorum');
    await expect(page.locator('tr', { hasText: audit }).textContent()).resolves.toContain('Audit.record');
    await page.close();
  });

  it("serves the app's AsyncAPI document at <path>/asyncapi.json", async () => {
    const response = await operator.request.get(`${base}/asyncapi.json`);
    expect(response.status()).toBe(200);
    expect(response.headers()['content-type']).toMatch(/^application\/json/);
    const document = (await response.json()) as { asyncapi: string; channels: Record<string, { address: string }> };
    expect(document.asyncapi).toMatch(/^3\./);
    expect(Object.values(document.channels).map((channel) => channel.address)).toEqual(expect.arrayContaining([orders, audit]));
  });

  it('finds a dead letter, replays it from the page, and the handler handles it', async () => {
    await app.get(RpcClient).send(orders, { n: 1 }, { messageId: 'order-1' });
    await waitFor(async () => (await broker.depth(`${orders}.dlq`)) === 1, 'the dead letter');
    const { page } = await operatorPage();
    await page.goto(base);
    await page.getByRole('link', { name: `1 dead letters of ${orders}` }).click();
    await page.waitForURL(/\/dead-letters\?/);
    const letter = page.getByRole('article');
    await expect(letter.textContent()).resolves.toContain('payment service down for order 1');
    await expect(letter.textContent()).resolves.toContain('order-1');
    await expect(letter.locator('pre.body').textContent()).resolves.toBe('{\n  "n": 1\n}');

    broken = false;
    handledNext = deferred<number>();
    await Promise.all([page.waitForURL(/done=replayed/), letter.getByRole('button', { name: 'Replay this letter' }).click()]);
    await expect(page.getByRole('status').textContent()).resolves.toBe('1 letter replayed to their queue.');
    await expect(handledNext.promise).resolves.toBe(1);
    expect(await broker.depth(`${orders}.dlq`)).toBe(0);

    // Counted once its outcome is recorded, just after the handler returned.
    const counts = async () => {
      const response = await page.request.get(`${base}/api/overview`);
      const { connections } = (await response.json()) as {
        connections: Array<{ handlers: Array<{ summary: { queue: string; outcomes: Record<string, number> } }> }>;
      };
      return connections[0].handlers.find((handler) => handler.summary.queue === orders)!.summary.outcomes;
    };
    await waitFor(async () => (await counts()).acked === 1, 'the replayed message counted');
    await page.goto(base);
    const cells = page.locator('tr', { hasText: orders }).locator('td');
    // A cell's count, without the rate per minute shown beside it once the rates have a window.
    const count = (cell: number) =>
      cells
        .nth(cell)
        .evaluate((td) => (td as unknown as { childNodes: ArrayLike<{ textContent: string | null }> }).childNodes[0]?.textContent);
    await expect(count(3)).resolves.toBe('1'); // handled
    await expect(count(4)).resolves.toBe('1'); // retried
    await expect(count(5)).resolves.toBe('1'); // dead-lettered
    await page.close();
  });

  it('deletes a letter after a confirmation step', async () => {
    await app.get(RpcClient).send(doomed, { reason: 'no such customer' }, { messageId: 'doomed-1' });
    await waitFor(async () => (await broker.depth(`${doomed}.dlq`)) === 1, 'the dead letter');
    const { page } = await operatorPage();
    await page.goto(lettersUrl(doomed));
    await Promise.all([page.waitForURL(/\/dead-letters\/delete\?/), page.getByRole('link', { name: 'Delete…' }).click()]);
    await expect(page.getByRole('heading', { level: 1 }).textContent()).resolves.toBe('Delete this dead letter?');
    await expect(page.locator('main').textContent()).resolves.toContain('no such customer');
    expect(await broker.depth(`${doomed}.dlq`)).toBe(1);
    await Promise.all([page.waitForURL(/done=deleted/), page.getByRole('button', { name: 'Delete permanently' }).click()]);
    await expect(page.getByRole('status').textContent()).resolves.toBe('1 letter deleted.');
    expect(await broker.depth(`${doomed}.dlq`)).toBe(0);
    await page.close();
  });

  it('offers the same through its JSON API, the CSRF token in a header', async () => {
    await app.get(RpcClient).send(doomed, { reason: 'api' }, { messageId: 'doomed-api' });
    await waitFor(async () => (await broker.depth(`${doomed}.dlq`)) === 1, 'the dead letter');
    const { csrfToken } = (await (await operator.request.get(`${base}/api/overview`)).json()) as { csrfToken: string };
    const page = (await (await operator.request.get(`${base}/api/dead-letters?connection=default&queue=${doomed}`)).json()) as {
      total: number;
      letters: Array<{ id: string; messageId: string; errorMessage: string; body: { kind: string; text: string } }>;
    };
    expect(page.total).toBe(1);
    expect(page.letters[0]).toMatchObject({
      messageId: 'doomed-api',
      errorMessage: 'api',
      body: { kind: 'json', text: '{\n  "reason": "api"\n}' },
    });
    const target = { connection: 'default', queue: doomed };
    const without = await operator.request.post(`${base}/api/dead-letters/delete`, { data: { ...target, id: page.letters[0].id } });
    expect(without.status()).toBe(403);
    expect(await without.json()).toMatchObject({ statusCode: 403 });
    const deleted = await operator.request.post(`${base}/api/dead-letters/delete`, {
      data: { ...target, id: page.letters[0].id },
      headers: { 'x-csrf-token': csrfToken },
    });
    expect(await deleted.json()).toEqual({ deleted: 1 });
    const elsewhere = await operator.request.post(`${base}/api/dead-letters/replay`, {
      data: { connection: 'default', queue: 'not-a-queue-of-this-app', all: true },
      headers: { 'x-csrf-token': csrfToken },
    });
    expect(elsewhere.status()).toBe(404);
    expect(await broker.depth(`${doomed}.dlq`)).toBe(0);
  });

  it('shows a hostile body, headers, error and queue name as text: no element, no script, no dialog', async () => {
    const { body, headerName, headerValue } = HOSTILE;
    const { page, dialogs } = await operatorPage();
    const response = await page.goto(lettersUrl(hostile));
    expect(response?.headers()).toMatchObject({
      'content-security-policy': expect.stringContaining("default-src 'none'"),
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
      'cache-control': 'no-store',
    });
    expect(response?.headers()['content-security-policy']).not.toContain('unsafe-inline');
    expect(response?.headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    await page.getByText(/^Headers/).click();
    // No element was made of any of it: the page has no image and no script at all.
    await expect(page.locator('img').count()).resolves.toBe(0);
    await expect(page.locator('script').count()).resolves.toBe(0);
    const text = await page.locator('main').textContent();
    for (const shown of [body, headerName, headerValue, '<img src=z onerror=alert(2)>', hostile]) expect(text).toContain(shown);

    await page.goto(base);
    await expect(page.locator('main').textContent()).resolves.toContain(hostile);
    await expect(page.locator('img').count()).resolves.toBe(0);
    expect(dialogs).toEqual([]);
    await page.close();
  });

  it('refuses every page, API call and action without the guard, and forRoot refuses to start without one', async () => {
    for (const url of [base, `${base}/api/overview`, lettersUrl(hostile), `${base}/assets/console.css`, `${base}/asyncapi.json`]) {
      const response = await fetch(url);
      expect(response.status).toBe(403);
      expect(response.headers.get('content-security-policy')).toContain("default-src 'none'");
    }
    const post = await fetch(`${base}/dead-letters/replay`, {
      method: 'POST',
      body: new URLSearchParams({ connection: 'default', queue: hostile, all: '1' }),
    });
    expect(post.status).toBe(403);
    expect(await broker.depth(`${hostile}.dlq`)).toBe(1);

    expect(() => MessagingConsoleModule.forRoot({})).toThrow(MessagingConfigError);
    expect(() => MessagingConsoleModule.forRoot({})).toThrow(/"guard".*unsafeNoAuth: true/);
    expect(() => MessagingConsoleModule.forRoot({ guard: {} as CanActivate })).toThrow(/"guard" must be a CanActivate/);
  });

  it('unsafeNoAuth: true starts the console open, with a warning', async () => {
    @Module({
      imports: [
        MessagingModule.forRoot({ uri: BROKER_URL, serviceName: 'console-open', registerHandlers: false }),
        MessagingConsoleModule.forRoot({ unsafeNoAuth: true }),
      ],
    })
    class OpenConsole {}
    const logger = new CaptureLogger();
    const { app: open, origin } = await listen(OpenConsole, logger);
    try {
      expect((await fetch(`${origin}/messaging`)).status).toBe(200);
      expect(logger.matching(/runs WITHOUT authentication \(unsafeNoAuth: true\)/)).toHaveLength(1);
    } finally {
      await open.close();
    }
  });

  it('refuses an action without the CSRF token of its cookie (403), and nothing changes', async () => {
    const { page } = await operatorPage();
    await page.goto(lettersUrl(hostile));
    const [id] = await page
      .locator('input[name="id"]')
      .evaluateAll((boxes) => boxes.map((box) => (box as unknown as { value: string }).value));
    const token = await page.locator('input[name="_csrf"]').first().inputValue();
    const form = { connection: 'default', queue: hostile, page: '1' };
    for (const fields of [
      { ...form, all: '1' },
      { ...form, all: '1', _csrf: 'forged' },
      { ...form, only: id },
    ]) {
      const response = await page.request.post(`${base}/dead-letters/replay`, { form: fields, maxRedirects: 0 });
      expect(response.status()).toBe(403);
      // A page's form gets a page of the console saying so, with the way back; not the API's JSON.
      expect(response.headers()['content-type']).toMatch(/^text\/html/);
      const text = await response.text();
      expect(text).toContain('<h1>403 Forbidden</h1>');
      expect(text).toContain('Back to handlers and queues');
    }
    const deleted = await page.request.post(`${base}/dead-letters/delete`, { form: { ...form, id }, maxRedirects: 0 });
    expect(deleted.status()).toBe(403);
    // The right token from another browser (its own cookie nonce) is refused too.
    const stranger = await browser.newContext({ extraHTTPHeaders: OPERATOR });
    const other = await stranger.request.post(`${base}/dead-letters/delete`, { form: { ...form, id, _csrf: token }, maxRedirects: 0 });
    expect(other.status()).toBe(403);
    await stranger.close();

    expect(await broker.depth(`${hostile}.dlq`)).toBe(1);
    const left = await app.get(DeadLetters).browse(hostile);
    expect(left.letters.map((letter) => letter.id)).toEqual([id]);
    await page.close();
  });

  it.each([
    ['classic', () => ordered],
    ['quorum', () => orderedQuorum],
  ])(
    'keeps the order and count of a %s dead-letter queue through browsing, deleting one and replaying some',
    async (_type, queueOf) => {
      const queue = queueOf();
      const dlq = `${queue}.dlq`;
      const client = app.get(RpcClient);
      const all = Array.from({ length: 25 }, (_, n) => n);
      for (const n of all) await client.send(queue, { n }, { messageId: `m${n}` });
      await waitFor(async () => (await broker.depth(dlq)) === 25, '25 dead letters');
      const letters = app.get(DeadLetters);
      const messageIds = (page: { letters: Array<{ messageId?: string }> }) => page.letters.map((letter) => letter.messageId);

      for (let round = 0; round < 3; round++) {
        const first = await letters.browse(queue, { offset: 0, limit: 20 });
        expect(first.total).toBe(25);
        expect(messageIds(first)).toEqual(all.slice(0, 20).map((n) => `m${n}`));
        const second = await letters.browse(queue, { offset: 20, limit: 20 });
        expect(messageIds(second)).toEqual(all.slice(20).map((n) => `m${n}`));
      }
      // The second page in the browser: letters 21 to 25, in order.
      const { page } = await operatorPage();
      await page.goto(lettersUrl(queue, 2));
      await expect(page.locator('article h2').allTextContents()).resolves.toEqual(
        all.slice(20).map((n) => `Letter ${n + 1}: UnrecoverableError`),
      );
      await page.close();

      const { letters: head } = await letters.browse(queue, { limit: 10 });
      await expect(letters.discard(queue, [head[3].id])).resolves.toBe(1);
      passing.add(5).add(7);
      await expect(letters.replay(queue, { ids: [head[5].id, head[7].id] })).resolves.toBe(2);
      await waitFor(() => handled.filter((n) => n === 5 || n === 7).length === 2, 'the replayed letters handled');
      passing.clear();
      handled.length = 0;

      const kept = all.filter((n) => ![3, 5, 7].includes(n)).map((n) => `m${n}`);
      expect(messageIds(await letters.browse(queue, { limit: 100 }))).toEqual(kept);
      const drained = await broker.drainQueue(dlq);
      expect(drained.map((msg) => msg.properties.messageId)).toEqual(kept);
    },
    60_000,
  );
});

/**
 * The screenshots in docs/console.md, written by the run on the in-memory broker (its queues
 * have fixed names there, so the pictures do not change from run to run; on RabbitMQ they go to
 * a temporary folder).
 */
describe('operator console screenshots', () => {
  const name = (fixed: string) => (ON_MEMORY ? fixed : unique(fixed));
  const orders = name('orders.place');
  const invoices = name('invoices.send');
  const folder = ON_MEMORY ? join(__dirname, '..', '..', 'docs', 'images') : join(tmpdir(), 'console-screenshots');

  @Injectable()
  class Orders {
    @MessageHandler({ queue: orders, retry: { attempts: 3, delaysMs: [20, 40] } })
    place({ sku }: { sku: string }) {
      throw new Error(`No price for SKU ${sku}: pricing service answered 503`);
    }
  }
  @Injectable()
  class Invoices {
    @MessageHandler({ queue: invoices, queueType: 'quorum', retry: false })
    send() {}
  }
  @Module({
    imports: [MessagingModule.forRoot({ uri: BROKER_URL, serviceName: 'shop' }), MessagingConsoleModule.forRoot({ guard: OperatorGuard })],
    providers: [Orders, Invoices],
  })
  class Shop {}

  it('the overview and dead-letter pages at desktop and phone width', async () => {
    const broker = await Broker.open();
    broker.queue(orders, [20, 40]);
    broker.queue(invoices, []);
    const browser = await launchChromium();
    const { app, origin } = await listen(Shop);
    try {
      const client = app.get(RpcClient);
      for (const [n, sku] of ['A-100', 'B-220', 'C-310'].entries())
        await client.send(orders, { sku, quantity: n + 1 }, { messageId: `order-${n + 1}` });
      for (let n = 1; n <= 4; n++) await client.send(invoices, { invoice: n }, { messageId: `invoice-${n}` });
      await waitFor(async () => (await broker.depth(`${orders}.dlq`)) === 3, 'three dead letters');
      mkdirSync(folder, { recursive: true });
      const desktop = await browser.newContext({ extraHTTPHeaders: OPERATOR, viewport: { width: 1280, height: 800 } });
      const page = await desktop.newPage();
      await page.goto(`${origin}/messaging`);
      await page.screenshot({ path: join(folder, 'console-overview.png'), fullPage: true });
      const letters = `${origin}/messaging/dead-letters?connection=default&queue=${encodeURIComponent(orders)}`;
      await page.goto(letters);
      await page.screenshot({ path: join(folder, 'console-dead-letters.png'), fullPage: true });
      const phone = await browser.newContext({
        extraHTTPHeaders: OPERATOR,
        viewport: { width: 390, height: 844 },
        isMobile: true,
        hasTouch: true,
      });
      const small = await phone.newPage();
      await small.goto(letters);
      // Nothing wider than the phone's screen: the page does not scroll sideways.
      await expect(small.evaluate<number>('document.documentElement.scrollWidth')).resolves.toBeLessThanOrEqual(390);
      await small.screenshot({ path: join(folder, 'console-dead-letters-phone.png') });
    } finally {
      await browser.close();
      await app.close();
      await broker.cleanup();
    }
  }, 60_000);
});
