import fc from 'fast-check';
import { bodyText, hexDump, MAX_BODY_CHARS, MAX_HEX_BYTES } from '../../lib/console/body-text';
import { headerText, MAX_HEADER_CHARS } from '../../lib/console/header-text';
import { escapeHtml, html, SafeHtml } from '../../lib/console/html';
import { letterView, MAX_HEADERS_SHOWN } from '../../lib/console/letter-view';
import { retryText } from '../../lib/console/overview-page';
import { errorPage } from '../../lib/console/error-page';
import { cutText, visibleText } from '../../lib/console/visible-text';
import { deadLetterOf } from '../../lib/operations/dead-letter';
import type { Message } from '../../lib/transport/transport.interface';

/** The console's pure rendering: escaping, bodies, headers and letters as text. */
describe('console rendering', () => {
  describe('html``', () => {
    it('escapes every value put in a template, in text and in quoted attributes', () => {
      const hostile = `<img src=x onerror=alert(1)>"'&`;
      expect(html`<p title="${hostile}">${hostile}</p>`.value).toBe(
        '<p title="&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;">&lt;img src=x onerror=alert(1)&gt;&quot;&#39;&amp;</p>',
      );
    });

    it('inserts only SafeHtml it made itself as markup; arrays item by item; nothing for undefined, null and false', () => {
      const inner = html`<b>${'<i>'}</b>`;
      expect(html`<p>${inner}${[inner, '<x>']}${undefined}${null}${false}${0}</p>`.value).toBe(
        '<p><b>&lt;i&gt;</b><b>&lt;i&gt;</b>&lt;x&gt;0</p>',
      );
    });

    it('never lets a value open a tag or leave a quoted attribute, whatever it is, and keeps all of its text', () => {
      const unescape = (text: string) =>
        text.replace(/&(lt|gt|quot|#39|amp);/g, (_, name: string) => ({ lt: '<', gt: '>', quot: '"', '#39': "'", amp: '&' })[name]!);
      fc.assert(
        fc.property(fc.string({ unit: 'grapheme' }), (text) => {
          const escaped = html`${text}`.value;
          expect(escaped).not.toMatch(/[<>"']/);
          expect(unescape(escaped)).toBe(text);
        }),
      );
    });

    it('escapeHtml turns the five markup characters into entities', () => {
      expect(escapeHtml(`&<>"'`)).toBe('&amp;&lt;&gt;&quot;&#39;');
      expect(html`${new SafeHtml('<b>')}`.value).toBe('<b>');
    });
  });

  describe('bodyText', () => {
    it('pretty-prints JSON, by content type or by look', () => {
      expect(bodyText(Buffer.from('{"a":[1,2]}'), 'application/json')).toEqual({
        kind: 'json',
        text: '{\n  "a": [\n    1,\n    2\n  ]\n}',
        bytes: 11,
        cut: false,
      });
      expect(bodyText(Buffer.from(' ["x"]')).kind).toBe('json');
      expect(bodyText(Buffer.from('{not json'), 'application/json')).toMatchObject({ kind: 'text', text: '{not json' });
    });

    it('shows other UTF-8 as text, invisible characters written out', () => {
      expect(bodyText(Buffer.from('héllo\nworld\t!'), 'text/plain')).toEqual({
        kind: 'text',
        text: 'héllo\nworld\t!',
        bytes: 14,
        cut: false,
      });
      expect(bodyText(Buffer.from('abc\u202edef')).text).toBe('abc\\u{202e}def');
    });

    it('shows bytes that are not text, or are encoded (gzip), as hex with the size', () => {
      const binary = Buffer.from([0xff, 0x00, 0x41]);
      expect(bodyText(binary)).toEqual({ kind: 'binary', text: '00000000  ff 00 41', bytes: 3, cut: false });
      expect(bodyText(Buffer.from('plain'), 'text/plain', 'gzip').kind).toBe('binary');
      expect(bodyText(Buffer.from('a\u0001b')).kind).toBe('binary');
      expect(bodyText(Buffer.from('plain'), 'text/plain', 'utf-8').kind).toBe('text');
    });

    it('cuts long bodies, saying so, with their size', () => {
      const long = bodyText(Buffer.from('x'.repeat(MAX_BODY_CHARS + 10)));
      expect(long).toMatchObject({ kind: 'text', bytes: MAX_BODY_CHARS + 10, cut: true });
      expect(long.text).toHaveLength(MAX_BODY_CHARS);
      const big = bodyText(Buffer.alloc(MAX_HEX_BYTES + 1, 0xff));
      expect(big).toMatchObject({ kind: 'binary', bytes: MAX_HEX_BYTES + 1, cut: true });
      expect(big.text.split('\n')).toHaveLength(MAX_HEX_BYTES / 16);
    });

    it('an empty body is empty', () => {
      expect(bodyText(Buffer.alloc(0))).toEqual({ kind: 'empty', text: '', bytes: 0, cut: false });
    });

    it('hexDump writes 16 bytes a row after the offset', () => {
      expect(hexDump(Buffer.from('0123456789abcdefXY'))).toBe('00000000  30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66\n00000010  58 59');
    });
  });

  describe('headerText and visibleText', () => {
    it('writes any header value as text: tables as JSON, bytes in hex, dates in ISO form', () => {
      expect(headerText('plain')).toBe('plain');
      expect(headerText(3)).toBe('3');
      expect(headerText(true)).toBe('true');
      expect(headerText(10n)).toBe('"10"');
      expect(headerText(Buffer.from('hi'))).toBe('"6869"');
      expect(headerText([{ count: 1, time: new Date(0), queue: 'q' }])).toBe('[{"count":1,"time":"1970-01-01T00:00:00.000Z","queue":"q"}]');
      expect(headerText(null)).toBe('null');
      expect(headerText(undefined)).toBe('');
    });

    it('cuts a long value with an ellipsis and writes out invisible characters', () => {
      expect(headerText('y'.repeat(MAX_HEADER_CHARS + 1))).toBe(`${'y'.repeat(MAX_HEADER_CHARS)}…`);
      expect(visibleText('a\u0000b\u200bc\u2066d\nok')).toBe('a\\u{0}b\\u{200b}c\\u{2066}d\nok');
    });

    it('cutText never splits a surrogate pair', () => {
      expect(cutText('ab😀', 3)).toEqual({ text: 'ab', cut: true });
      expect(cutText('abc', 3)).toEqual({ text: 'abc', cut: false });
    });
  });

  describe('letterView', () => {
    const message = (headers: Record<string, unknown>, content = '{"n":1}'): Message => ({
      content: Buffer.from(content),
      fields: { deliveryTag: 1, redelivered: false, exchange: '', routingKey: 'q.dlq', consumerTag: 'c' },
      properties: {
        contentType: 'application/json',
        contentEncoding: undefined,
        headers,
        deliveryMode: 2,
        priority: undefined,
        correlationId: undefined,
        replyTo: undefined,
        expiration: undefined,
        messageId: 'm-1',
        timestamp: undefined,
        type: undefined,
        userId: undefined,
        appId: undefined,
        clusterId: undefined,
      },
    });

    it("reads the module's headers: error, stack, attempts, where the message came from", () => {
      const view = letterView(
        deadLetterOf(
          message({
            'x-error-name': 'Error',
            'x-error-message': 'boom',
            'x-error-stack': 'at place (a.ts:1:1)',
            'x-attempts': 3,
            'x-original-queue': 'q',
            'x-original-exchange': 'shop',
            'x-original-routing-key': 'order.placed',
            'x-custom': 'c',
          }),
          4,
        ),
      );
      expect(view).toMatchObject({
        position: 4,
        messageId: 'm-1',
        errorName: 'Error',
        errorMessage: 'boom',
        errorStack: 'at place (a.ts:1:1)',
        attempts: '3',
        originalQueue: 'q',
        originalExchange: 'shop',
        originalRoutingKey: 'order.placed',
        contentType: 'application/json',
        headersLeftOut: 0,
        body: { kind: 'json', text: '{\n  "n": 1\n}' },
      });
      expect(view.id).toMatch(/^[0-9a-f]{32}$/);
      expect(view.headers).toContainEqual({ name: 'x-custom', value: 'c' });
    });

    it('shows at most MAX_HEADERS_SHOWN headers and counts the rest', () => {
      const headers = Object.fromEntries(Array.from({ length: MAX_HEADERS_SHOWN + 5 }, (_, i) => [`x-track-${i}`, 'v']));
      const view = letterView(deadLetterOf(message(headers), 0));
      expect(view.headers).toHaveLength(MAX_HEADERS_SHOWN);
      expect(view.headersLeftOut).toBe(5);
    });

    it('reads no header through a prototype a producer smuggled in', () => {
      const headers = JSON.parse('{"__proto__": {"x-error-name": "Forged"}}') as Record<string, unknown>;
      expect(letterView(deadLetterOf(message(headers), 0)).errorName).toBeUndefined();
    });
  });

  it('retryText says a policy in words, the last delay repeating', () => {
    expect(retryText(false)).toBe('no retries');
    expect(retryText({ attempts: 1, delaysMs: [] })).toBe('no retries');
    expect(retryText({ attempts: 4, delaysMs: [500, 1500] })).toBe('4 tries, waiting 500 ms, 1.5 s, 1.5 s');
    expect(retryText({ attempts: 2, delaysMs: [90_000] })).toBe('2 tries, waiting 1.5 min');
    expect(retryText({ attempts: 3, delaysMs: [] })).toBe('3 tries');
  });

  it('errorPage says the status and why as text, with the way back to the overview', () => {
    const page = errorPage('/ops/console', 503, '<script>alert(1)</script>');
    expect(page).toContain('<h1>503 Service Unavailable</h1>');
    expect(page).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page).not.toContain('<script>');
    expect(page).toContain('<a href="/ops/console">Back to handlers and queues</a>');
    expect(errorPage('', 504, 'slow')).toContain('<a href="/">Back to handlers and queues</a>');
  });
});
