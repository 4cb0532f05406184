import { consoleUrl } from './console-links';
import { hiddenFields } from './dead-letters-page';
import { html } from './html';
import { letterFacts } from './letter-html';
import type { LetterView } from './letter-view';
import { layout } from './page-layout';
import type { PageWindow } from './paging';

export interface DeletePageData {
  base: string;
  connection: string;
  queue: string;
  deadLetterQueue: string;
  id: string;
  /** The letter, when it is still on the page it was picked from. */
  letter?: LetterView;
  window: PageWindow;
  csrfToken: string;
}

/** The confirmation step before a letter is deleted for good. */
export function deletePage(data: DeletePageData): string {
  const { base, connection, queue, deadLetterQueue, id, letter, window } = data;
  const back = consoleUrl(base, '/dead-letters', { connection, queue, page: window.page });
  const main = html`<h1>Delete this dead letter?</h1>
    <p class="lead">It leaves <span class="queue">${deadLetterQueue}</span> for good: it is not replayed, and nothing can bring it back.</p>
    ${
      letter
        ? html`<article class="letter" aria-label="The letter to delete">${letterFacts(letter)}</article>`
        : html`<p>The letter <code>${id}</code> is no longer on page ${window.page}; if it is still in the queue, it is deleted.</p>`
    }
    <form method="post" action="${consoleUrl(base, '/dead-letters/delete')}" class="confirm">
      ${hiddenFields(data)}<input type="hidden" name="id" value="${id}" />
      <button type="submit" class="danger">Delete permanently</button>
      <a href="${back}">Cancel</a>
    </form>`;
  return layout({
    base,
    title: 'Delete a dead letter',
    trail: [
      { label: 'Handlers and queues', href: base },
      { label: `Dead letters of ${queue}`, href: back },
      { label: 'Delete a dead letter' },
    ],
    main,
  });
}
