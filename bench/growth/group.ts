/**
 * What S8 (cost growth) and S9 (idle memory) points share: each point is a scenario of its own
 * (one child per point, impl and repetition, as S1–S7), tagged with the dimension it belongs to and
 * its place on that dimension's axis, so that the report and the plot can put the points together.
 */
import type { MetricDef, ScenarioDef } from '../scenarios';

export type Dimension = 'a' | 'b' | 'c' | 'd' | 'memory';

export interface DimensionDef {
  id: Dimension;
  title: string;
  /** the axis: what the points vary, e.g. "handlers" */
  axis: string;
  metrics: MetricDef[];
  /** the keys of the metrics the S8 plot shows (msgs/s across body sizes says less than MB/s) */
  plot: string[];
  describe(quick: boolean): string;
}

export interface PointScenario extends ScenarioDef {
  group: 'S8' | 'S9';
  dimension: Dimension;
  /** position on the (log) x axis of the plot */
  x: number;
  /** the point as the report names it, e.g. "10 KB" */
  xLabel: string;
  /** at most this many repetitions, whatever --reps says, to keep the group within its time */
  maxReps: number;
}

export const isPoint = (s: ScenarioDef): s is PointScenario => 'group' in s;

export function repsOf(s: ScenarioDef, reps: number): number {
  return isPoint(s) ? Math.min(reps, s.maxReps) : reps;
}

export const metric = (key: string, label: string, better: MetricDef['better']): MetricDef => ({ key, label, better });
