import { describe, expect, it } from 'vitest';
import { formatEpochLine, formatMetricValue } from './format-metric.ts';
import { createMetricClassifier } from './metric-classifier.ts';
import type { MetricDefinition } from './metric-definition.ts';

const percent: MetricDefinition = {
  name: 'p',
  label: 'P',
  format: 'percent',
  higherIsBetter: true,
  description: '.',
};
const float: MetricDefinition = { ...percent, format: 'float' };
const int: MetricDefinition = { ...percent, format: 'int' };

describe('formatMetricValue', () => {
  it.each([
    [percent, 0.912, '91.20%'],
    [percent, 1, '100.00%'],
    [percent, 0, '0.00%'],
    [percent, 0.00005, '0.01%'],
    [float, 0.234, '0.2340'],
    [float, 12.5, '12.5000'],
    [float, 0, '0.0000'],
    [float, -0.5, '-0.5000'],
    [float, 0.001, '0.0010'],
    [float, 0.00025, '2.500e-4'],
    [float, 1234567, '1.235e+6'],
    [float, 999999, '999999.0000'],
    [int, 12, '12'],
    [int, 12.6, '13'],
    [int, -0.2, '0'],
    [undefined, 0.234, '0.2340'],
    [undefined, 1e-8, '1.000e-8'],
  ] as const)('%o, %d → %s', (definition, value, text) => {
    expect(formatMetricValue(definition, value)).toBe(text);
  });

  it.each([percent, float, int, undefined])('shows non-finite values for %o', (definition) => {
    expect(formatMetricValue(definition, Number.NaN)).toBe('NaN');
    expect(formatMetricValue(definition, Number.POSITIVE_INFINITY)).toBe('+Inf');
    expect(formatMetricValue(definition, Number.NEGATIVE_INFINITY)).toBe('-Inf');
  });
});

describe('formatEpochLine', () => {
  it('shows primary first, standard metrics in catalog order, then custom and rejected counts', () => {
    const classifier = createMetricClassifier('image_classification');
    const verdicts = classifier.classify({
      train_loss: 0.234,
      eval_top1: 91.2,
      lr: 0.00025,
      extra_a: 1,
      extra_b: 2,
      accuracy: 0.5, // wins over eval_top1, which is rejected
    });
    expect(formatEpochLine(classifier, 3, verdicts)).toBe(
      'epoch 3 │ Accuracy 50.00% │ Train loss 0.2340 │ Learning rate 2.500e-4 │ +2 custom │ 1 rejected',
    );
  });

  it('matches the documented example', () => {
    const classifier = createMetricClassifier('image_classification');
    const verdicts = classifier.classify({ train_loss: 0.234, accuracy: 0.912, a: 1, b: 2 });
    expect(formatEpochLine(classifier, 3, verdicts)).toBe(
      'epoch 3 │ Accuracy 91.20% │ Train loss 0.2340 │ +2 custom',
    );
  });

  it('uses the task labels and shows non-finite values', () => {
    const classifier = createMetricClassifier('instance_segmentation');
    const verdicts = classifier.classify({ 'metrics/mAP50(M)': 0.4, 'metrics/mAP50(B)': Number.NaN });
    expect(formatEpochLine(classifier, 0, verdicts)).toBe('epoch 0 │ Box mAP@0.5 NaN │ Mask mAP@0.5 40.00%');
  });

  it('prints just the epoch when nothing was reported', () => {
    expect(formatEpochLine(createMetricClassifier('pose_estimation'), 7, [])).toBe('epoch 7');
  });
});
