import { type CanActivate, Injectable } from '@nestjs/common';
import { MessagingConfigError } from '../../lib';
import { consoleCookie, cookieValue } from '../../lib/console/cookies';
import { CSRF_COOKIE, SECURITY_HEADERS } from '../../lib/console/console.constants';
import { resolveConsoleOptions } from '../../lib/console/console.options';
import { mountPath } from '../../lib/console/console-request';
import { csrfNonce, csrfToken, csrfTokenMatches, isCsrfNonce } from '../../lib/console/csrf-token';
import { csrfAllows } from '../../lib/console/csrf.guard';

@Injectable()
class AdminGuard implements CanActivate {
  canActivate(): boolean {
    return true;
  }
}

/** What keeps the console closed: its options, the CSRF token, the cookie, the response headers. */
describe('console security', () => {
  describe('options', () => {
    it('refuses to start without a guard, naming "guard" and "unsafeNoAuth" and what to pass', () => {
      for (const options of [{}, { unsafeNoAuth: false }, { path: '/ops' }]) {
        expect(() => resolveConsoleOptions(options)).toThrow(MessagingConfigError);
        expect(() => resolveConsoleOptions(options)).toThrow(
          /MessagingConsoleModule\.forRoot: the console needs a "guard".*guard: YourAuthGuard.*unsafeNoAuth: true/,
        );
      }
    });

    it('takes a CanActivate class or instance, or unsafeNoAuth: true, and a path', () => {
      expect(resolveConsoleOptions({ guard: AdminGuard })).toMatchObject({ path: '/messaging', guard: AdminGuard, unsafeNoAuth: false });
      const instance = new AdminGuard();
      expect(resolveConsoleOptions({ guard: instance, path: '/admin/messaging' })).toMatchObject({
        path: '/admin/messaging',
        guard: instance,
      });
      expect(resolveConsoleOptions({ unsafeNoAuth: true }).guard).toBeUndefined();
    });

    it('names the option that is wrong', () => {
      const cases: Array<[object, RegExp]> = [
        [{ guard: class NotAGuard {} }, /"guard" must be a CanActivate class/],
        [{ guard: 'admin' }, /"guard" must be a CanActivate class/],
        [{ guard: AdminGuard, path: 'messaging' }, /"path" must be a URL path/],
        [{ guard: AdminGuard, path: '/ops/' }, /"path" must be a URL path/],
        [{ guard: AdminGuard, path: '/ops/:id' }, /"path" must be a URL path/],
        [{ guard: AdminGuard, path: '//evil.example' }, /"path" must be a URL path/],
        [{ unsafeNoAuth: 'yes' }, /"unsafeNoAuth" must be true or false/],
        [{ guard: AdminGuard, csrfSecret: 'short' }, /"csrfSecret" must be a string of at least 32 characters/],
      ];
      for (const [options, message] of cases) expect(() => resolveConsoleOptions(options as never)).toThrow(message);
      expect(() => resolveConsoleOptions(undefined as never)).toThrow(/takes an options object/);
    });

    it('makes a random CSRF secret per process, or takes the one given', () => {
      expect(resolveConsoleOptions({ guard: AdminGuard }).secret).toHaveLength(32);
      expect(resolveConsoleOptions({ guard: AdminGuard }).secret.equals(resolveConsoleOptions({ guard: AdminGuard }).secret)).toBe(false);
      const secret = 's'.repeat(32);
      expect(resolveConsoleOptions({ guard: AdminGuard, csrfSecret: secret }).secret.toString()).toBe(secret);
    });
  });

  describe('CSRF token', () => {
    const secret = Buffer.alloc(32, 7);

    it("matches only the token of the cookie's nonce under the same secret", () => {
      const nonce = csrfNonce();
      expect(isCsrfNonce(nonce)).toBe(true);
      const token = csrfToken(secret, nonce);
      expect(csrfTokenMatches(secret, nonce, token)).toBe(true);
      expect(csrfTokenMatches(secret, csrfNonce(), token)).toBe(false);
      expect(csrfTokenMatches(Buffer.alloc(32, 8), nonce, token)).toBe(false);
      expect(csrfTokenMatches(secret, nonce, `${token}x`)).toBe(false);
      expect(csrfTokenMatches(secret, nonce, undefined)).toBe(false);
      expect(csrfTokenMatches(secret, nonce, [token])).toBe(false);
    });

    it('refuses a nonce it did not make (an attacker cannot plant an empty or chosen cookie)', () => {
      for (const nonce of [undefined, '', 'short', 'a'.repeat(43) + '!', 'x'.repeat(44)]) {
        expect(isCsrfNonce(nonce)).toBe(false);
        expect(csrfTokenMatches(secret, nonce, csrfToken(secret, String(nonce)))).toBe(false);
      }
    });

    it('lets an action through with the token in the form or the x-csrf-token header, from this origin only', () => {
      const nonce = csrfNonce();
      const token = csrfToken(secret, nonce);
      const cookie = `other=1; ${CSRF_COOKIE}=${nonce}`;
      expect(csrfAllows(secret, { cookie }, { _csrf: token })).toBe(true);
      expect(csrfAllows(secret, { cookie, 'x-csrf-token': token }, {})).toBe(true);
      expect(csrfAllows(secret, { cookie, 'sec-fetch-site': 'same-origin' }, { _csrf: token })).toBe(true);
      expect(csrfAllows(secret, { cookie, 'sec-fetch-site': 'cross-site' }, { _csrf: token })).toBe(false);
      expect(csrfAllows(secret, { cookie, 'sec-fetch-site': 'same-site' }, { _csrf: token })).toBe(false);
      expect(csrfAllows(secret, { cookie }, {})).toBe(false);
      expect(csrfAllows(secret, {}, { _csrf: token })).toBe(false);
      expect(csrfAllows(secret, { cookie }, undefined)).toBe(false);
      expect(csrfAllows(secret, { cookie }, JSON.parse(`{"__proto__": {"_csrf": "${token}"}}`))).toBe(false);
    });
  });

  describe('cookie and mount path', () => {
    it("reads one cookie of a Cookie header, and writes the console's: its path only, HttpOnly, SameSite=Strict, Secure over HTTPS", () => {
      expect(cookieValue('a=1; nm-console-csrf=abc; b=2', 'nm-console-csrf')).toBe('abc');
      expect(cookieValue('a=1', 'nm-console-csrf')).toBeUndefined();
      expect(cookieValue(undefined, 'nm-console-csrf')).toBeUndefined();
      expect(consoleCookie('n', 'v', '/ops', false)).toBe('n=v; Path=/ops; HttpOnly; SameSite=Strict');
      expect(consoleCookie('n', 'v', '/ops', true)).toBe('n=v; Path=/ops; HttpOnly; SameSite=Strict; Secure');
    });

    it('finds where the console is mounted from the path asked for, and never yields a path to another site', () => {
      expect(mountPath({ headers: {}, originalUrl: '/api/messaging/dead-letters?queue=x' }, '/dead-letters')).toBe('/api/messaging');
      expect(mountPath({ headers: {}, originalUrl: '/messaging/' }, '')).toBe('/messaging');
      expect(mountPath({ headers: {}, originalUrl: '/Messaging/Dead-Letters' }, '/dead-letters')).toBe('/Messaging');
      expect(mountPath({ headers: {}, originalUrl: '//evil.example/messaging/dead-letters' }, '/dead-letters')).toBe(
        '/evil.example/messaging',
      );
      expect(mountPath({ headers: {}, originalUrl: '/\\evil.example/dead-letters' }, '/dead-letters')).toBe('/evil.example');
      expect(mountPath({ headers: {}, url: '/messaging' }, '')).toBe('/messaging');
    });
  });

  it('sends a strict Content-Security-Policy and the other headers on every response', () => {
    const csp = SECURITY_HEADERS['Content-Security-Policy'];
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("form-action 'self'");
    expect(csp).not.toMatch(/unsafe-|https?:|\*/);
    expect(SECURITY_HEADERS).toMatchObject({
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
      'Cache-Control': 'no-store',
    });
  });
});
