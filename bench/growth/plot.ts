/** The S8 plot: one panel per dimension and metric, ours vs raw, as a PNG (SVG rendered by resvg). */
import * as fs from 'fs';
import type { summarize } from '../stats';
import type { PointScenario } from './group';
import { DIMENSIONS } from './index';
import { Panel, chartSvg } from './svg-chart';

type Cells = ReturnType<typeof summarize>;

const SERIES = [
  { entry: 'raw', name: 'raw amqplib', color: '#4477aa' },
  { entry: 'ours', name: 'nestjs-messaging', color: '#ee6677' },
];
const FONTS = ['/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf', '/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf'];

export function s8Panels(points: PointScenario[], cells: Cells): Panel[] {
  const panels: Panel[] = [];
  for (const d of DIMENSIONS) {
    const mine = points.filter((p) => p.group === 'S8' && p.dimension === d.id).sort((a, b) => a.x - b.x);
    if (mine.length === 0) continue;
    for (const m of d.metrics.filter((x) => d.plot.includes(x.key))) {
      panels.push({
        title: `S8${d.id} ${d.title}`,
        subtitle: `${m.label}, ${m.better === 'higher' ? 'higher' : 'lower'} is better`,
        yLabel: m.label,
        ticks: mine.map((p) => ({ x: p.x, label: p.xLabel })),
        series: SERIES.map((s) => ({
          name: s.name,
          color: s.color,
          points: mine.map((p) => {
            const c = cells[p.id]?.[s.entry]?.[m.key];
            return c && c.n > 0 ? { x: p.x, median: c.median, min: c.min, max: c.max } : { x: p.x, median: NaN, min: NaN, max: NaN };
          }),
        })),
      });
    }
  }
  return panels;
}

/** Writes the PNG to every file given; returns why it could not, if it could not. */
export function writeS8Plot(points: PointScenario[], cells: Cells, subtitle: string, files: string[]): string | undefined {
  try {
    const panels = s8Panels(points, cells);
    if (panels.length === 0) return 'no S8 point has results';
    const svg = chartSvg('S8 cost growth: nestjs-messaging vs raw amqplib', `medians, min–max whiskers, log x axis · ${subtitle}`, panels);
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
    const fontFiles = FONTS.filter((f) => fs.existsSync(f));
    const png = new Resvg(svg, {
      background: 'white',
      fitTo: { mode: 'zoom', value: 1.5 },
      font: { fontFiles, loadSystemFonts: fontFiles.length === 0, defaultFontFamily: 'DejaVu Sans' },
    })
      .render()
      .asPng();
    for (const f of files) fs.writeFileSync(f, png);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
