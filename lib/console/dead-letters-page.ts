import type { DeadLetterPage } from '../operations/dead-letter';
import type { DoneNotice } from './console-action';
import { consoleUrl } from './console-links';
import { CSRF_FIELD } from './console.constants';
import { html, type SafeHtml } from './html';
import { letterFacts } from './letter-html';
import type { LetterView } from './letter-view';
import { layout } from './page-layout';
import { pageCount, type PageWindow } from './paging';

export interface DeadLettersPageData {
  base: string;
  connection: string;
  queue: string;
  page: DeadLetterPage;
  letters: LetterView[];
  window: PageWindow;
  csrfToken: string;
  done?: DoneNotice;
}

/** A page of a dead-letter queue: each letter, to replay (one, selected, all) or to delete (after a confirmation). */
export function deadLettersPage(data: DeadLettersPageData): string {
  const { base, connection, queue, page, letters, window, done } = data;
  const hidden = hiddenFields(data);
  const main = html`<h1>Dead letters of <span class="queue">${queue}</span></h1>
    <p class="lead">
      ${page.total} ${page.total === 1 ? 'letter' : 'letters'} in <span class="queue">${page.deadLetterQueue}</span> (connection
      “${connection}”), oldest first. Reading a page leaves every letter in its place.
    </p>
    ${done && html`<p class="notice" role="status">${doneText(done)}</p>`}
    ${
      page.total > 0 &&
      html`<form method="post" action="${consoleUrl(base, '/dead-letters/replay')}" class="bulk">
        ${hidden}<input type="hidden" name="all" value="1" />
        <button type="submit">Replay all ${page.total} ${page.total === 1 ? 'letter' : 'letters'}</button>
      </form>`
    }
    ${
      letters.length === 0
        ? html`<p>No letters on this page.</p>`
        : html`<form method="post" action="${consoleUrl(base, '/dead-letters/replay')}">
            ${hidden}
            <ol class="letters" start="${window.offset + 1}">
              ${letters.map((letter) => letterItem(data, letter))}
            </ol>
            <p><button type="submit">Replay selected letters</button></p>
          </form>`
    }
    ${pager(base, connection, queue, window, page.total)}`;
  return layout({
    base,
    title: `Dead letters of ${queue}`,
    trail: [{ label: 'Handlers and queues', href: base }, { label: `Dead letters of ${queue}` }],
    main,
  });
}

function letterItem({ base, connection, queue, window }: DeadLettersPageData, letter: LetterView): SafeHtml {
  const heading = `letter-${letter.position}`;
  const confirm = consoleUrl(base, '/dead-letters/delete', { connection, queue, id: letter.id, page: window.page });
  return html`<li>
    <article class="letter" aria-labelledby="${heading}">
      <h2 id="${heading}">Letter ${letter.position + 1}${letter.errorName !== undefined && html`: ${letter.errorName}`}</h2>
      <p>
        <label><input type="checkbox" name="id" value="${letter.id}" /> Select letter ${letter.position + 1}</label>
      </p>
      ${letterFacts(letter)}
      <p class="actions">
        <button type="submit" name="only" value="${letter.id}">Replay this letter</button>
        <a class="danger" href="${confirm}">Delete…</a>
      </p>
    </article>
  </li>`;
}

/** The fields every action form carries: where it acts, which page to come back to, the CSRF token. */
export function hiddenFields({
  connection,
  queue,
  window,
  csrfToken,
}: Pick<DeadLettersPageData, 'connection' | 'queue' | 'window' | 'csrfToken'>): SafeHtml {
  return html`<input type="hidden" name="connection" value="${connection}" /><input type="hidden" name="queue" value="${queue}" />
    <input type="hidden" name="page" value="${window.page}" /><input type="hidden" name="${CSRF_FIELD}" value="${csrfToken}" />`;
}

function pager(base: string, connection: string, queue: string, window: PageWindow, total: number): SafeHtml {
  const pages = pageCount(total);
  if (pages <= 1) return html``;
  const at = (page: number) => consoleUrl(base, '/dead-letters', { connection, queue, page });
  return html`<nav aria-label="Pages" class="pager">
    ${window.page > 1 && html`<a href="${at(window.page - 1)}" rel="prev">Previous page</a>`}
    <span>Page ${window.page} of ${pages}</span>
    ${window.page < pages && html`<a href="${at(window.page + 1)}" rel="next">Next page</a>`}
  </nav>`;
}

function doneText({ action, count }: DoneNotice): string {
  const letters = `${count} ${count === 1 ? 'letter' : 'letters'}`;
  return action === 'replayed' ? `${letters} replayed to their queue.` : `${letters} deleted.`;
}
