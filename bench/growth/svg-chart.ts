/**
 * A small SVG line chart: panels in a grid, each with a log x axis (the points), a linear y axis
 * from 0, one line per series with min–max whiskers, and one legend for all.
 */

export interface SeriesPoint {
  x: number;
  median: number;
  min: number;
  max: number;
}

export interface Series {
  name: string;
  color: string;
  points: SeriesPoint[];
}

export interface Panel {
  title: string;
  subtitle: string;
  yLabel: string;
  /** the x values and how to label them */
  ticks: Array<{ x: number; label: string }>;
  series: Series[];
}

const W = 380;
const H = 250;
const M = { left: 62, right: 16, top: 40, bottom: 34 };
const COLS = 3;
const HEADER = 80;

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** 0 and a "nice" maximum (1, 2 or 5 × 10^k steps), for about five grid lines. */
function niceScale(max: number): { top: number; step: number } {
  if (!(max > 0)) return { top: 1, step: 0.2 };
  const raw = max / 5;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * mag).find((s) => s >= raw)!;
  return { top: Math.ceil(max / step) * step, step };
}

function fmtTick(v: number): string {
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return String(+v.toFixed(2));
}

function panelSvg(p: Panel, ox: number, oy: number): string {
  const iw = W - M.left - M.right;
  const ih = H - M.top - M.bottom;
  const xs = p.ticks.map((t) => Math.log10(t.x));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const pad = x1 > x0 ? (x1 - x0) * 0.08 : 0.5;
  const px = (x: number) => ox + M.left + ((Math.log10(x) - (x0 - pad)) / (x1 - x0 + 2 * pad)) * iw;
  const values = p.series.flatMap((s) => s.points.flatMap((q) => [q.max, q.median])).filter(Number.isFinite);
  const { top, step } = niceScale(Math.max(0, ...values));
  const py = (y: number) => oy + M.top + ih - (y / top) * ih;
  const out: string[] = [
    `<text x="${ox + M.left}" y="${oy + 16}" font-size="13" font-weight="bold">${esc(p.title)}</text>`,
    `<text x="${ox + M.left}" y="${oy + 31}" font-size="11" fill="#555">${esc(p.subtitle)}</text>`,
    `<text transform="translate(${ox + 14},${oy + M.top + ih / 2}) rotate(-90)" font-size="11" text-anchor="middle" fill="#444">${esc(p.yLabel)}</text>`,
  ];
  for (let y = 0; y <= top + step / 2; y += step) {
    out.push(`<line x1="${ox + M.left}" x2="${ox + W - M.right}" y1="${py(y)}" y2="${py(y)}" stroke="#e3e3e3"/>`);
    out.push(`<text x="${ox + M.left - 5}" y="${py(y) + 4}" font-size="10" text-anchor="end" fill="#444">${fmtTick(y)}</text>`);
  }
  for (const t of p.ticks) {
    out.push(`<line x1="${px(t.x)}" x2="${px(t.x)}" y1="${oy + M.top + ih}" y2="${oy + M.top + ih + 4}" stroke="#444"/>`);
    out.push(`<text x="${px(t.x)}" y="${oy + M.top + ih + 16}" font-size="10" text-anchor="middle" fill="#444">${esc(t.label)}</text>`);
  }
  out.push(`<rect x="${ox + M.left}" y="${oy + M.top}" width="${iw}" height="${ih}" fill="none" stroke="#999"/>`);
  for (const [i, s] of p.series.entries()) {
    const dodge = (i - (p.series.length - 1) / 2) * 4; // whiskers of one x side by side, not on top of each other
    const pts = s.points.filter((q) => Number.isFinite(q.median));
    if (pts.length > 1)
      out.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((q) => `${px(q.x)},${py(q.median)}`).join(' ')}"/>`,
      );
    for (const q of pts) {
      if (q.max > q.min)
        out.push(
          `<line x1="${px(q.x) + dodge}" x2="${px(q.x) + dodge}" y1="${py(q.min)}" y2="${py(q.max)}" stroke="${s.color}" stroke-width="1.5"/>`,
        );
      out.push(`<circle cx="${px(q.x)}" cy="${py(q.median)}" r="3.5" fill="${s.color}"/>`);
    }
  }
  return out.join('\n');
}

export function chartSvg(title: string, subtitle: string, panels: Panel[]): string {
  const rows = Math.ceil(panels.length / COLS);
  const width = W * Math.min(COLS, panels.length);
  const height = HEADER + rows * H;
  const legend = panels[0]?.series ?? [];
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="12" y="22" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="12" y="42" font-size="11" fill="#555">${esc(subtitle)}</text>`,
    ...legend.map((s, i) => {
      const x = 12 + 190 * i;
      return `<line x1="${x}" x2="${x + 22}" y1="60" y2="60" stroke="${s.color}" stroke-width="3"/><text x="${x + 28}" y="64" font-size="12">${esc(s.name)}</text>`;
    }),
    ...panels.map((p, i) => panelSvg(p, (i % COLS) * W, HEADER + Math.floor(i / COLS) * H)),
    '</svg>',
  ];
  return out.join('\n');
}
