/** The console's one stylesheet, served from the package (CSP `style-src 'self'`): no inline style anywhere. */
export const CONSOLE_CSS = `:root {
  color-scheme: light dark;
  --fg: #1b1f24; --muted: #57606a; --bg: #ffffff; --panel: #f6f8fa; --line: #d0d7de;
  --accent: #0b5cad; --ok: #1a7f37; --bad: #b3261e; --focus: #ffbf47;
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #e6edf3; --muted: #9da7b3; --bg: #0d1117; --panel: #161b22; --line: #30363d; --accent: #58a6ff; --ok: #3fb950; --bad: #ff7b72; }
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
header.site { padding: .75rem 1rem; border-bottom: 1px solid var(--line); background: var(--panel); }
.brand { font-weight: 700; color: var(--fg); text-decoration: none; }
nav[aria-label="Breadcrumb"] { padding: .5rem 1rem 0; }
.trail { list-style: none; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .25rem; color: var(--muted); }
.trail li + li::before { content: "›"; margin-right: .25rem; }
main { padding: 1rem; max-width: 80rem; margin: 0 auto; }
h1 { font-size: 1.5rem; margin: .5rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.2rem; margin: 1.5rem 0 .5rem; overflow-wrap: anywhere; }
.lead { color: var(--muted); margin-top: 0; }
a { color: var(--accent); }
a:focus-visible, button:focus-visible, input:focus-visible, summary:focus-visible, .scroll:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.scroll { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table { border-collapse: collapse; width: 100%; font-size: .95rem; }
caption { text-align: left; padding: .5rem .75rem; font-weight: 600; }
th, td { padding: .4rem .75rem; border-top: 1px solid var(--line); text-align: left; vertical-align: top; }
thead th { background: var(--panel); white-space: nowrap; }
.num { text-align: right; white-space: nowrap; }
.rate { display: block; color: var(--muted); font-size: .8rem; }
.queue, code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; overflow-wrap: anywhere; }
.tag { display: inline-block; font-size: .75rem; padding: 0 .4rem; border: 1px solid var(--line); border-radius: 1rem; color: var(--muted); }
.problem { display: block; color: var(--bad); font-weight: normal; font-size: .85rem; }
.health.ok strong { color: var(--ok); }
.health.bad strong { color: var(--bad); }
.notice { padding: .5rem .75rem; border-left: 4px solid var(--ok); background: var(--panel); }
.letters { padding-left: 0; list-style: none; }
.letter { border: 1px solid var(--line); border-radius: 6px; padding: .25rem 1rem 1rem; margin: 1rem 0; background: var(--bg); }
.letter h2 { margin-top: .5rem; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: .5rem 0; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
pre { background: var(--panel); border: 1px solid var(--line); border-radius: 6px; padding: .75rem; overflow-x: auto; max-height: 30rem; white-space: pre-wrap; font-size: .85rem; }
.headers th, .headers td { overflow-wrap: anywhere; white-space: pre-wrap; font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; }
.body-meta { color: var(--muted); margin-bottom: .25rem; }
details { margin: .5rem 0; }
summary { cursor: pointer; }
button, .danger { font: inherit; }
button { padding: .45rem .9rem; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent); color: #fff; cursor: pointer; }
button.danger { border-color: var(--bad); background: var(--bad); }
a.danger { color: var(--bad); }
.actions { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; }
.bulk, .confirm { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: 1rem 0; }
.pager { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1rem 0; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
@media (max-width: 40rem) {
  main { padding: .75rem; }
  .facts { grid-template-columns: 1fr; }
  .facts dd { margin-bottom: .5rem; }
}
`;
