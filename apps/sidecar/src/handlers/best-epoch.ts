// The best-epoch rule as the handlers apply it: the catalog decides, only the challenged epochs are compared.
import type { MetricVerdict, TaskType } from '@training-callbacks/metric-catalog';
import { selectBestEpoch } from '@training-callbacks/metric-catalog';
import type { BestEpochRule } from '@training-callbacks/store';

/**
 * Canonical name → value of the accepted verdicts. Built with Object.fromEntries, which defines each
 * entry: `metrics[name] = value` on a plain object would drop a metric named `__proto__`.
 */
export function acceptedMetrics(verdicts: readonly MetricVerdict[]): Record<string, number> {
  return Object.fromEntries(verdicts.filter((v) => v.tier !== 'rejected').map((v) => [v.name, v.value]));
}

/**
 * The best-epoch rule of one report (`epoch` with primary `value`; undefined: no finite value), run by
 * the store inside the epoch's transaction against the job's stored best. Only when the best epoch
 * itself is re-reported (or there is none yet) can the best move elsewhere, so only then are all the
 * stored epochs compared again; otherwise the challenger meets the incumbent. The catalog decides.
 */
export function bestEpochRule(
  task: TaskType,
  primaryName: string,
  epoch: number,
  value: number | undefined,
): BestEpochRule {
  const candidate = (e: number, v: number) => ({ epoch: e, metrics: { [primaryName]: v } });
  return async (incumbent, otherEpochs) => {
    if (incumbent === null || incumbent.epoch === epoch) {
      const all = [...(await otherEpochs())].map(([e, v]) => candidate(e, v));
      if (value !== undefined) all.push(candidate(epoch, value));
      return selectBestEpoch(task, all) ?? null;
    }
    if (value === undefined) return incumbent;
    return (
      selectBestEpoch(task, [candidate(incumbent.epoch, incumbent.value), candidate(epoch, value)]) ??
      incumbent
    );
  };
}
