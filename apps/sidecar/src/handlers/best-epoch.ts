// The best-epoch rule as the handlers apply it: the catalog decides, only the challenged epochs are compared.
import type { MetricVerdict, TaskType } from '@training-callbacks/metric-catalog';
import { selectBestEpoch } from '@training-callbacks/metric-catalog';
import type { JobState } from './job-states.ts';

/**
 * Canonical name → value of the accepted verdicts. Built with Object.fromEntries, which defines each
 * entry: `metrics[name] = value` on a plain object would drop a metric named `__proto__`.
 */
export function acceptedMetrics(verdicts: readonly MetricVerdict[]): Record<string, number> {
  return Object.fromEntries(verdicts.filter((v) => v.tier !== 'rejected').map((v) => [v.name, v.value]));
}

/**
 * The best epoch once `epoch` reports `value` (undefined: no finite primary value). Only when the
 * current best epoch itself is re-reported can the best move elsewhere, so only then are all epochs
 * compared again; otherwise the challenger meets the incumbent. The catalog decides either way.
 */
export function nextBest(
  state: JobState,
  primaryByEpoch: ReadonlyMap<number, number>,
  epoch: number,
  value: number | undefined,
): { epoch: number; value: number } | null {
  const task = state.job.task as TaskType;
  const primaryName = state.classifier.catalog.primaryMetric;
  const candidate = (e: number, v: number) => ({ epoch: e, metrics: { [primaryName]: v } });
  const incumbent = state.job.bestEpoch;
  if (incumbent === undefined || incumbent === epoch) {
    const all = [...primaryByEpoch].filter(([e]) => e !== epoch).map(([e, v]) => candidate(e, v));
    if (value !== undefined) all.push(candidate(epoch, value));
    return selectBestEpoch(task, all) ?? null;
  }
  const current = { epoch: incumbent, value: state.job.bestValue! };
  if (value === undefined) return current;
  return selectBestEpoch(task, [candidate(current.epoch, current.value), candidate(epoch, value)]) ?? current;
}
