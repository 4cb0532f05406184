/** The value of cookie `name` in a Cookie request header, if there is one. */
export function cookieValue(header: unknown, name: string): string | undefined {
  if (typeof header !== 'string') return undefined;
  for (const pair of header.split(';')) {
    const at = pair.indexOf('=');
    if (at !== -1 && pair.slice(0, at).trim() === name) return pair.slice(at + 1).trim();
  }
  return undefined;
}

/**
 * A Set-Cookie value for the console's own cookie: sent only to its path, never to scripts
 * (HttpOnly), never with a request another site starts (SameSite=Strict), only over HTTPS when
 * the page came over HTTPS. It lasts as long as the browser session.
 */
export function consoleCookie(name: string, value: string, path: string, secure: boolean): string {
  return `${name}=${value}; Path=${path}; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
}
