import { html, type SafeHtml } from './html';

export interface Layout {
  /** The console's mount path, as the browser sees it. */
  base: string;
  title: string;
  /** Links above the heading, the current page last (not linked). */
  trail?: Array<{ label: string; href?: string }>;
  main: SafeHtml;
}

/** A whole page: landmarks, one stylesheet from the console itself, nothing else loaded. */
export function layout({ base, title, trail = [], main }: Layout): string {
  return html`<!doctype html>
    <html lang="en">
      <head>
        <meta charset="utf-8" />
        <meta name="viewport" content="width=device-width, initial-scale=1" />
        <title>${title} · Messaging console</title>
        <link rel="stylesheet" href="${base}/assets/console.css" />
      </head>
      <body>
        <header class="site">
          <a class="brand" href="${base}">Messaging console</a>
        </header>
        ${
          trail.length > 0 &&
          html`<nav aria-label="Breadcrumb">
            <ol class="trail">
              ${trail.map((step) =>
                step.href ? html`<li><a href="${step.href}">${step.label}</a></li>` : html`<li aria-current="page">${step.label}</li>`,
              )}
            </ol>
          </nav>`
        }
        <main>${main}</main>
      </body>
    </html> `.value;
}
