import type { BodyText } from './body-text';
import { html, type SafeHtml } from './html';
import type { LetterView } from './letter-view';

/** What a letter says about its failure and its origin, every value as text. */
export function letterFacts(letter: LetterView): SafeHtml {
  const fact = (term: string, value: string | undefined) =>
    value !== undefined &&
    html`<dt>${term}</dt>
      <dd>${value}</dd>`;
  return html`<dl class="facts">
      ${fact('Message id', letter.messageId)} ${fact('Error', letter.errorName)} ${fact('Error message', letter.errorMessage)}
      ${fact('Attempts', letter.attempts)} ${fact('Failed in queue', letter.originalQueue)}
      ${fact('Published to exchange', letter.originalExchange === '' ? '(default exchange)' : letter.originalExchange)}
      ${fact('Routing key', letter.originalRoutingKey)} ${fact('Content type', letter.contentType)}
      ${fact('Content encoding', letter.contentEncoding)}
    </dl>
    ${
      letter.errorStack !== undefined &&
      html`<details>
        <summary>Stack</summary>
        <pre class="stack">${letter.errorStack}</pre>
      </details>`
    }
    <details>
      <summary>Headers (${letter.headers.length + letter.headersLeftOut})</summary>
      <div class="scroll" role="region" aria-label="Headers" tabindex="0">
        <table class="headers">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Value</th>
            </tr>
          </thead>
          <tbody>
            ${letter.headers.map(
              ({ name, value }) =>
                html`<tr>
                  <th scope="row">${name}</th>
                  <td>${value}</td>
                </tr>`,
            )}
          </tbody>
        </table>
      </div>
      ${letter.headersLeftOut > 0 && html`<p>${letter.headersLeftOut} more headers not shown.</p>`}
    </details>
    ${bodyHtml(letter.body)}`;
}

function bodyHtml(body: BodyText): SafeHtml {
  const kind = { empty: 'empty', json: 'JSON', text: 'text', binary: 'binary, in hex' }[body.kind];
  const size = `${body.bytes} ${body.bytes === 1 ? 'byte' : 'bytes'}`;
  return html`<p class="body-meta">Body: ${kind}, ${size}${body.cut && ', cut: only the beginning is shown'}</p>
    ${body.kind !== 'empty' && html`<pre class="body">${body.text}</pre>`}`;
}
