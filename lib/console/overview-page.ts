import type { RetryPolicy } from '../interfaces/messaging-options.interface';
import { consoleUrl } from './console-links';
import { html, type SafeHtml } from './html';
import type { ConnectionOverview, HandlerOverview } from './messaging-console.service';
import { layout } from './page-layout';

/** Every connection of the app, its health, and a row per queue it consumes. */
export function overviewPage(base: string, connections: ConnectionOverview[]): string {
  const main = html`<h1>Handlers and queues</h1>
    <p class="lead">What this instance consumes; counts since it started, rates per minute over the last minute.</p>
    ${connections.length === 0 && html`<p>No MessagingModule connection in this application.</p>`}
    ${connections.map((connection, index) => connectionSection(base, connection, index))}`;
  return layout({ base, title: 'Handlers and queues', main });
}

function connectionSection(base: string, connection: ConnectionOverview, index: number): SafeHtml {
  const id = `connection-${index}`;
  return html`<section aria-labelledby="${id}">
    <h2 id="${id}">Connection “${connection.name}”</h2>
    <p class="health ${connection.ready ? 'ok' : 'bad'}">
      <strong>${connection.ready ? 'Ready' : `Not ready: ${connection.notReadyReason ?? 'unknown'}`}</strong>
      · ${connection.connected ? 'connected' : 'not connected'} · ${connection.inFlight} in flight
    </p>
    ${
      connection.handlers.length === 0
        ? html`<p>This connection consumes nothing here (no handlers, or <code>registerHandlers: false</code>).</p>`
        : html`<div class="scroll" role="region" aria-label="Queues of connection ${connection.name}" tabindex="0">
            <table>
              <caption>
                Queues of connection “${connection.name}”
              </caption>
              <thead>
                <tr>
                  <th scope="col">Queue</th>
                  <th scope="col">Handlers</th>
                  <th scope="col" class="num">Ready</th>
                  <th scope="col" class="num">Consumers</th>
                  <th scope="col" class="num">Handled</th>
                  <th scope="col" class="num">Retried</th>
                  <th scope="col" class="num">Dead-lettered</th>
                  <th scope="col" class="num">Requeued</th>
                  <th scope="col">Retry policy</th>
                  <th scope="col" class="num">Dead letters</th>
                </tr>
              </thead>
              <tbody>
                ${connection.handlers.map((handler) => handlerRow(base, connection.name, handler))}
              </tbody>
            </table>
          </div>`
    }
  </section>`;
}

function handlerRow(base: string, connection: string, { summary, depth, deadLetters, problem, rates }: HandlerOverview): SafeHtml {
  const outcomes = summary.outcomes;
  const count = (outcome: 'acked' | 'retried' | 'dead_lettered' | 'requeued') =>
    outcomes === undefined ? '–' : html`${outcomes[outcome]}${rates && html`<span class="rate">${perMinute(rates[outcome])}/min</span>`}`;
  const letters = consoleUrl(base, '/dead-letters', { connection, queue: summary.baseQueue });
  return html`<tr>
    <th scope="row">
      <span class="queue">${summary.queue}</span>
      <span class="tag">${summary.queueType}</span>${summary.broadcast && html` <span class="tag">broadcast</span>`}
      ${problem && html`<span class="problem">${problem}</span>`}
    </th>
    <td>${summary.name}</td>
    <td class="num">${depth?.messages ?? '–'}</td>
    <td class="num">${depth?.consumers ?? '–'}</td>
    <td class="num">${count('acked')}</td>
    <td class="num">${count('retried')}</td>
    <td class="num">${count('dead_lettered')}</td>
    <td class="num">${count('requeued')}</td>
    <td>${retryText(summary.retry)}</td>
    <td class="num">
      <a href="${letters}">${deadLetters ?? '–'}<span class="visually-hidden"> dead letters of ${summary.queue}</span></a>
    </td>
  </tr>`;
}

/** A retry policy in words: `3 tries, waiting 1 s, 5 s`. */
export function retryText(retry: Required<RetryPolicy> | false): string {
  if (retry === false || retry.attempts <= 1) return 'no retries';
  // The last delay repeats for the tries beyond the list.
  const { attempts, delaysMs } = retry;
  const waits =
    delaysMs.length === 0 ? [] : Array.from({ length: attempts - 1 }, (_, i) => durationText(delaysMs[Math.min(i, delaysMs.length - 1)]));
  return `${attempts} tries${waits.length > 0 ? `, waiting ${waits.join(', ')}` : ''}`;
}

function durationText(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)} s`;
  return `${+(ms / 60_000).toFixed(1)} min`;
}

function perMinute(rate: number): string {
  return rate >= 10 ? rate.toFixed(0) : rate.toFixed(1);
}
