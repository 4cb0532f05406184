/** The S8 and S9 sections of the report: one table per dimension, ours and raw per point, ratios, verdicts. */
import type { MetricDef } from '../scenarios';
import { Cell, fmt, summarize } from '../stats';
import type { DimensionDef, PointScenario } from './group';
import { DIMENSIONS } from './index';

type Cells = ReturnType<typeof summarize>;

/** Where the S8 plot went (a path relative to the report), or why there is none. */
export interface PlotOutcome {
  file?: string;
  error?: string;
}

/** How far ours/raw may move from the smallest to the largest point before ours "grows worse". */
export const SHAPE_TOLERANCE = 0.1;

const hasRatio = (m: MetricDef) => m.better === 'higher' || m.better === 'lower';

function fmtRange(c: Cell | undefined): string {
  if (!c) return '';
  if (c.n === 0) return `failed (${c.failed})`;
  const range = c.n > 1 ? ` (${fmt(c.min)}–${fmt(c.max)})` : '';
  return `${fmt(c.median)}${range}${c.failed ? ` ⚠ ${c.failed} failed` : ''}`;
}

const fmtRatio = (r: number | undefined) => (r === undefined || !Number.isFinite(r) ? '—' : `**${r.toFixed(2)}x**`);

/** ours/raw at the smallest and the largest point, and whether ours keeps raw's shape between them. */
function verdict(d: DimensionDef, m: MetricDef, points: PointScenario[], cells: Cells): string | undefined {
  const [first, last] = [points[0], points[points.length - 1]];
  const cell = (p: PointScenario, e: string) => cells[p.id]?.[e]?.[m.key];
  const r0 = cell(first, 'ours')?.ratio;
  const r1 = cell(last, 'ours')?.ratio;
  if (points.length < 2) return undefined;
  if (r0 === undefined || r1 === undefined)
    return `- ${m.label}: no verdict, ${first.xLabel} or ${last.xLabel} ${d.axis} has no ratio (see Problems)`;
  const change = (e: string) => (cell(last, e)?.median ?? NaN) / (cell(first, e)?.median ?? NaN);
  const drift = r1 / r0;
  const worse = m.better === 'higher' ? drift < 1 - SHAPE_TOLERANCE : drift > 1 + SHAPE_TOLERANCE;
  const better = m.better === 'higher' ? drift > 1 + SHAPE_TOLERANCE : drift < 1 - SHAPE_TOLERANCE;
  const word = worse ? '**ours grows worse than raw**' : better ? 'ours grows better than raw' : 'ours keeps raw’s shape';
  return (
    `- ${m.label}, ${first.xLabel} → ${last.xLabel} ${d.axis}: raw ×${change('raw').toFixed(2)}, ours ×${change('ours').toFixed(2)}; ` +
    `ours/raw ${r0.toFixed(2)}x → ${r1.toFixed(2)}x: ${word}`
  );
}

function dimensionTable(d: DimensionDef, points: PointScenario[], cells: Cells, quick: boolean): string[] {
  const head = [d.axis];
  for (const m of d.metrics) head.push(`${m.label} raw`, `${m.label} ours`, ...(hasRatio(m) ? ['ours/raw'] : []));
  const lines = [
    `### ${points[0].id.replace(/-.*/, '')} ${d.title}`,
    '',
    `${d.describe(quick)}.`,
    '',
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---:').join('|')}|`,
  ];
  for (const p of points) {
    const row = [p.xLabel];
    for (const m of d.metrics) {
      const [raw, ours] = [cells[p.id]?.raw?.[m.key], cells[p.id]?.ours?.[m.key]];
      row.push(fmtRange(raw), fmtRange(ours), ...(hasRatio(m) ? [fmtRatio(ours?.ratio)] : []));
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  const verdicts = d.metrics
    .filter(hasRatio)
    .map((m) => verdict(d, m, points, cells))
    .filter((v): v is string => !!v);
  if (verdicts.length) lines.push('', ...verdicts);
  lines.push('');
  return lines;
}

function s8Section(points: PointScenario[], cells: Cells, quick: boolean, plot?: PlotOutcome): string[] {
  const lines = [
    '## S8 cost growth (ours and raw amqplib)',
    '',
    `- **cells**: median (min–max over at most ${points[0].maxReps} repetitions, each point, impl and repetition in a fresh process); **ours/raw**: ratio of the medians in this run`,
    `- **verdict**: ours/raw at the largest point against the smallest; a move of more than ${SHAPE_TOLERANCE * 100}% against ours is “grows worse than raw”, i.e. ours scales worse than hand-written amqplib along that axis`,
  ];
  if (plot?.file) lines.push('', `![S8 cost growth: ours vs raw amqplib](${plot.file})`);
  else if (plot?.error) lines.push('', `_The S8 plot was not made: ${plot.error}_`);
  lines.push('');
  for (const d of DIMENSIONS) {
    const mine = points.filter((p) => p.dimension === d.id).sort((a, b) => a.x - b.x);
    if (mine.length) lines.push(...dimensionTable(d, mine, cells, quick));
  }
  return lines;
}

/** (100 − 1) / 99 for one impl and metric, or undefined when a point is missing. */
function perHandler(
  cells: Cells,
  one: PointScenario | undefined,
  hundred: PointScenario | undefined,
  impl: string,
  key: string,
): number | undefined {
  const a = one && cells[one.id]?.[impl]?.[key];
  const b = hundred && cells[hundred.id]?.[impl]?.[key];
  if (!a || !b || a.n === 0 || b.n === 0) return undefined;
  return (b.median - a.median) / (hundred!.x - one!.x);
}

function s9Section(points: PointScenario[], cells: Cells, quick: boolean): string[] {
  const d = DIMENSIONS.find((x) => x.id === 'memory')!;
  const sorted = [...points].sort((a, b) => a.x - b.x);
  const one = sorted.find((p) => p.x === 1);
  const hundred = sorted.find((p) => p.x === 100);
  const head = ['metric'];
  for (const p of sorted)
    head.push(
      p.x === 0 ? 'bare amqplib connection + channel (raw)' : `${p.title} raw`,
      p.x === 0 ? 'bare Nest application context (ours)' : `${p.title} ours`,
    );
  const withPerHandler = !!(one && hundred);
  if (withPerHandler) head.push('per handler raw', 'per handler ours');
  const lines = [
    '## S9 idle memory',
    '',
    `${d.describe(quick)}. Memory in MB; per handler = (100 handlers − 1 handler) / 99, memory in KB.`,
    '',
    `| ${head.join(' | ')} |`,
    `|---|${head
      .slice(1)
      .map(() => '---:')
      .join('|')}|`,
  ];
  for (const m of d.metrics) {
    const row = [m.label];
    for (const p of sorted) {
      const ours = cells[p.id]?.ours?.[m.key];
      row.push(
        fmtRange(cells[p.id]?.raw?.[m.key]),
        fmtRange(ours) + (p.x > 0 && hasRatio(m) && ours?.ratio !== undefined ? ` · ${fmtRatio(ours.ratio)}` : ''),
      );
    }
    if (withPerHandler) {
      const kb = m.key.endsWith('MB') ? 1024 : 1;
      const v = (impl: string) => perHandler(cells, one, hundred, impl, m.key);
      row.push(
        ...['raw', 'ours'].map((impl) =>
          v(impl) === undefined ? '—' : `${(v(impl)! * kb).toFixed(kb > 1 ? 0 : 2)}${kb > 1 ? ' KB' : ''}`,
        ),
      );
    }
    lines.push(`| ${row.join(' | ')} |`);
  }
  const bare = sorted.find((p) => p.x === 0);
  if (bare && one) {
    const over = (impl: string, key: string) =>
      (cells[one.id]?.[impl]?.[key]?.median ?? NaN) - (cells[bare.id]?.[impl]?.[key]?.median ?? NaN);
    const signed = (v: number) => `${v < 0 ? '−' : '+'}${Math.abs(v).toFixed(1)}`;
    const mb = (impl: string) => `${signed(over(impl, 'idleRssMB'))} MB RSS (heap ${signed(over(impl, 'heapUsedMB'))} MB)`;
    lines.push(
      '',
      `- 1 handler over the bare process: ours (MessagingModule, the library's code, its connections) ${mb('ours')}; raw (its publish, consumer and reply channels) ${mb('raw')}`,
    );
  }
  lines.push('');
  return lines;
}

export function renderPoints(points: PointScenario[], cells: Cells, quick: boolean, plot?: PlotOutcome): string[] {
  const s8 = points.filter((p) => p.group === 'S8');
  const s9 = points.filter((p) => p.group === 'S9');
  return [...(s8.length ? ['', ...s8Section(s8, cells, quick, plot)] : []), ...(s9.length ? ['', ...s9Section(s9, cells, quick)] : [])];
}
