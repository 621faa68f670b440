// Runs the README example, so that the documented code and outputs stay true.
import { describe, expect, it } from 'vitest';
import { createMetricClassifier, formatEpochLine, selectBestEpoch } from './index.ts';

describe('README example', () => {
  it('classifies a timm row, prints the epoch line and picks the best epoch', () => {
    const classifier = createMetricClassifier('image_classification', [
      {
        name: 'ece',
        label: 'ECE',
        format: 'float',
        higherIsBetter: false,
        description: 'Expected calibration error.',
      },
    ]);
    const verdicts = classifier.classify({ eval_top1: 91.2, train_loss: 0.234, lr: 0.00025, ece: 0.03 });
    expect(verdicts[0]).toMatchObject({
      reportedName: 'ece',
      name: 'ece',
      tier: 'custom',
      value: 0.03,
      reason: '',
    });
    expect(verdicts[1]).toMatchObject({
      reportedName: 'eval_top1',
      name: 'accuracy',
      tier: 'primary',
      value: 0.912,
      reason: 'converted from percent (×0.01)',
    });
    expect(formatEpochLine(classifier, 3, verdicts)).toBe(
      'epoch 3 │ Accuracy 91.20% │ Train loss 0.2340 │ Learning rate 2.500e-4 │ +1 custom',
    );
    expect(
      selectBestEpoch('image_classification', [
        { epoch: 0, metrics: { accuracy: 0.8 } },
        { epoch: 1, metrics: { accuracy: 0.9 } },
        { epoch: 2, metrics: { accuracy: 0.9 } },
      ]),
    ).toEqual({ epoch: 1, value: 0.9 });
  });
});
