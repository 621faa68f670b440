import type { MetricClassifier, MetricVerdict } from './metric-classifier.ts';
import type { MetricDefinition } from './metric-definition.ts';

export type { MetricFormat } from './metric-definition.ts';

// Float values outside [SMALL, LARGE) (other than 0) use exponent form, which keeps four significant
// digits where four decimals would lose them (learning rates such as 0.00025 → 2.500e-4).
const SMALL = 1e-3;
const LARGE = 1e6;

/**
 * Formats a value for display by its definition's format: `percent` → `91.20%` (the value is a fraction),
 * `float` → `0.2340` (`2.500e-4` for tiny or huge values), `int` → `12`. Without a definition the value is
 * formatted as a float. NaN → `NaN`, ±Infinity → `+Inf`/`-Inf`.
 */
export function formatMetricValue(
  definition: Pick<MetricDefinition, 'format'> | undefined,
  value: number,
): string {
  if (Number.isNaN(value)) {
    return 'NaN';
  }
  if (value === Number.POSITIVE_INFINITY) {
    return '+Inf';
  }
  if (value === Number.NEGATIVE_INFINITY) {
    return '-Inf';
  }
  switch (definition?.format) {
    case 'percent':
      return `${(value * 100).toFixed(2)}%`;
    case 'int':
      return String(Math.round(value) + 0); // `+ 0` turns -0 into 0.
    default: {
      const magnitude = Math.abs(value);
      return magnitude !== 0 && (magnitude < SMALL || magnitude >= LARGE)
        ? value.toExponential(3)
        : value.toFixed(4);
    }
  }
}

/**
 * The console line of one epoch, e.g. `epoch 3 │ Accuracy 91.20% │ Train loss 0.2340 │ +2 custom`: the
 * primary metric, then the other standard metrics in catalog order (labels and formats from the catalog),
 * then the number of custom metrics and, when any, of rejected ones.
 */
export function formatEpochLine(
  classifier: MetricClassifier,
  epoch: number,
  verdicts: readonly MetricVerdict[],
): string {
  const accepted = new Map<string, MetricVerdict>();
  let customCount = 0;
  let rejectedCount = 0;
  for (const verdict of verdicts) {
    if (verdict.tier === 'rejected') {
      rejectedCount += 1;
    } else if (verdict.tier === 'custom') {
      customCount += 1;
    } else {
      accepted.set(verdict.name, verdict);
    }
  }
  const parts = [`epoch ${epoch}`];
  // standardMetrics lists the primary first, so catalog order is "primary, then standard".
  for (const definition of classifier.catalog.standardMetrics) {
    const verdict = accepted.get(definition.name);
    if (verdict !== undefined) {
      parts.push(`${definition.label} ${formatMetricValue(definition, verdict.value)}`);
    }
  }
  if (customCount > 0) {
    parts.push(`+${customCount} custom`);
  }
  if (rejectedCount > 0) {
    parts.push(`${rejectedCount} rejected`);
  }
  return parts.join(' │ ');
}
