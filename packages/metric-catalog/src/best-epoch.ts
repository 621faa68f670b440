import type { MetricDefinition } from './metric-definition.ts';
import { getTaskCatalog } from './task-catalog.ts';
import type { TaskType } from './task-type.ts';

/**
 * True when `candidate` beats `incumbent` under the definition's direction. A non-finite candidate (NaN,
 * ±Infinity) is never better; a finite candidate beats a missing or non-finite incumbent. Ties are not
 * better, so the earliest epoch with the best value stays the best.
 */
export function isBetter(
  definition: MetricDefinition,
  candidate: number,
  incumbent: number | undefined,
): boolean {
  if (!Number.isFinite(candidate)) {
    return false;
  }
  if (incumbent === undefined || !Number.isFinite(incumbent)) {
    return true;
  }
  return definition.higherIsBetter ? candidate > incumbent : candidate < incumbent;
}

/**
 * The best epoch of a job by its task's primary metric, or `undefined` when no epoch has a finite value of
 * it. Epochs are compared in ascending epoch order whatever the input order, so a tie goes to the earliest
 * epoch. Metric names must be canonical (as stored after {@link MetricClassifier.classify}).
 */
export function selectBestEpoch(
  task: TaskType,
  epochs: readonly { epoch: number; metrics: Readonly<Record<string, number>> }[],
): { epoch: number; value: number } | undefined {
  const catalog = getTaskCatalog(task);
  const primary = catalog.standardMetrics.find((d) => d.name === catalog.primaryMetric);
  if (primary === undefined) {
    return undefined; // Unreachable: the catalog's integrity test guarantees the primary is defined.
  }
  const ordered = [...epochs].sort((a, b) => a.epoch - b.epoch);
  let best: { epoch: number; value: number } | undefined;
  for (const { epoch, metrics } of ordered) {
    if (!Object.hasOwn(metrics, primary.name)) {
      continue;
    }
    const value = metrics[primary.name] as number;
    if (isBetter(primary, value, best?.value)) {
      best = { epoch, value };
    }
  }
  return best;
}
