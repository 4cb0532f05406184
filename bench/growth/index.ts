/** The S8 and S9 points, run and selected (`--only S8`, `--only S9`) like S1–S7. */
import type { DimensionDef, PointScenario } from './group';
import { MEMORY_DIMENSION, S9 } from './memory';
import { S8, S8_DIMENSIONS } from './s8';

export const POINT_SCENARIOS: PointScenario[] = [...S8, ...S9];

export const DIMENSIONS: DimensionDef[] = [...Object.values(S8_DIMENSIONS), MEMORY_DIMENSION];
