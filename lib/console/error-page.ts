import { STATUS_CODES } from 'node:http';
import { html } from './html';
import { layout } from './page-layout';

/**
 * A console page that could not be made: its status and why, as a page of the console, so that an
 * operator's browser shows what went wrong (e.g. RabbitMQ unreachable) and the way back, not JSON.
 */
export function errorPage(base: string, status: number, message: string): string {
  const title = `${status} ${STATUS_CODES[status] ?? 'Error'}`;
  const overview = base || '/';
  const main = html`<h1>${title}</h1>
    <p class="lead">${message}</p>
    <p><a href="${overview}">Back to handlers and queues</a> · or reload this page to try again.</p>`;
  return layout({ base, title, trail: [{ label: 'Handlers and queues', href: overview }, { label: title }], main });
}
