import { describe, expect, it } from 'vitest';
import { applyScale } from './apply-scale.ts';
import { CatalogError } from './catalog-error.ts';
import { createMetricClassifier, type MetricVerdict } from './metric-classifier.ts';
import type { MetricDefinition } from './metric-definition.ts';
import type { TaskType } from './task-type.ts';

function byName(verdicts: readonly MetricVerdict[]): Record<string, MetricVerdict> {
  return Object.fromEntries(verdicts.map((v) => [v.reportedName, v]));
}

/** Canonical name → value of the accepted verdicts. */
function stored(task: TaskType, metrics: Record<string, number>): Record<string, number> {
  const verdicts = createMetricClassifier(task).classify(metrics);
  return Object.fromEntries(verdicts.filter((v) => v.tier !== 'rejected').map((v) => [v.name, v.value]));
}

describe('normaliseName: framework aliases', () => {
  it.each([
    // Ultralytics detect, raw and as its MLflow callback strips them
    ['object_detection', 'metrics/mAP50(B)', 'mAP50', 1],
    ['object_detection', 'metrics/mAP50-95(B)', 'mAP50-95', 1],
    ['object_detection', 'metrics/precision(B)', 'precision', 1],
    ['object_detection', 'metrics/recall(B)', 'recall', 1],
    ['object_detection', 'metrics/mAP50B', 'mAP50', 1],
    ['object_detection', 'metrics/mAP50-95B', 'mAP50-95', 1],
    ['object_detection', 'train/box_loss', 'train_box_loss', 1],
    ['object_detection', 'train/dfl_loss', 'train_dfl_loss', 1],
    ['object_detection', 'val/cls_loss', 'val_cls_loss', 1],
    ['object_detection', 'lr/pg0', 'learning_rate', 1],
    // YOLOv5, torchmetrics
    ['object_detection', 'metrics/mAP_0.5', 'mAP50', 1],
    ['object_detection', 'metrics/mAP_0.5:0.95', 'mAP50-95', 1],
    ['object_detection', 'eval_map_50', 'mAP50', 1],
    ['object_detection', 'eval_map', 'mAP50-95', 1],
    // Ultralytics segment
    ['instance_segmentation', 'metrics/mAP50(B)', 'mAP50', 1],
    ['instance_segmentation', 'metrics/mAP50(M)', 'mask_mAP50', 1],
    ['instance_segmentation', 'metrics/mAP50-95(M)', 'mask_mAP50-95', 1],
    ['instance_segmentation', 'metrics/precisionM', 'mask_precision', 1],
    ['instance_segmentation', 'metrics/recall(M)', 'mask_recall', 1],
    ['instance_segmentation', 'train/seg_loss', 'train_seg_loss', 1],
    ['instance_segmentation', 'val/seg_loss', 'val_seg_loss', 1],
    // Ultralytics pose
    ['pose_estimation', 'metrics/mAP50(P)', 'pose_mAP50', 1],
    ['pose_estimation', 'metrics/mAP50-95P', 'pose_mAP50-95', 1],
    ['pose_estimation', 'metrics/mAP50(B)', 'mAP50', 1],
    ['pose_estimation', 'train/pose_loss', 'train_pose_loss', 1],
    ['pose_estimation', 'train/kobj_loss', 'train_kobj_loss', 1],
    ['pose_estimation', 'val/kobj_loss', 'val_kobj_loss', 1],
    ['pose_estimation', 'PCK', 'pck', 1],
    // Ultralytics classify
    ['image_classification', 'metrics/accuracy_top1', 'accuracy', 1],
    ['image_classification', 'metrics/accuracy_top5', 'top5_accuracy', 1],
    ['image_classification', 'train/loss', 'train_loss', 1],
    ['image_classification', 'val/loss', 'val_loss', 1],
    // timm summary.csv (percentages)
    ['image_classification', 'eval_top1', 'accuracy', 0.01],
    ['image_classification', 'eval_top5', 'top5_accuracy', 0.01],
    ['image_classification', 'eval_loss', 'val_loss', 1],
    ['image_classification', 'lr', 'learning_rate', 1],
    // Hugging Face
    ['image_classification', 'eval_accuracy', 'accuracy', 1],
    ['image_classification', 'loss', 'train_loss', 1],
    ['semantic_segmentation', 'eval_mean_iou', 'miou', 1],
    ['semantic_segmentation', 'eval_overall_accuracy', 'pixel_accuracy', 1],
    ['semantic_segmentation', 'eval_mean_accuracy', 'mean_accuracy', 1],
    ['semantic_segmentation', 'eval_loss', 'val_loss', 1],
    // Keras
    ['image_classification', 'val_accuracy', 'accuracy', 1],
    ['image_classification', 'val_acc', 'accuracy', 1],
    ['image_classification', 'acc', 'train_accuracy', 1],
    ['image_classification', 'val_sparse_top_k_categorical_accuracy', 'top5_accuracy', 1],
    // Lightning-style
    ['image_classification', 'val/acc', 'accuracy', 1],
    ['image_classification', 'val_acc_epoch', 'accuracy', 1],
    ['image_classification', 'train_loss_epoch', 'train_loss', 1],
    ['semantic_segmentation', 'val_loss_epoch', 'val_loss', 1],
    ['object_detection', 'lr-AdamW', 'learning_rate', 1],
  ] as const)('%s: %s → %s (×%d)', (task, reported, name, scale) => {
    expect(createMetricClassifier(task).normaliseName(reported)).toEqual({ name, scale });
  });

  it('returns canonical and unknown names unchanged with scale 1', () => {
    const classifier = createMetricClassifier('object_detection');
    expect(classifier.normaliseName('mAP50')).toEqual({ name: 'mAP50', scale: 1 });
    expect(classifier.normaliseName('my_metric')).toEqual({ name: 'my_metric', scale: 1 });
    expect(classifier.normaliseName('constructor')).toEqual({ name: 'constructor', scale: 1 });
  });

  it('matches aliases exactly (case-sensitive)', () => {
    expect(createMetricClassifier('object_detection').normaliseName('METRICS/MAP50(B)').scale).toBe(1);
    expect(createMetricClassifier('object_detection').normaliseName('METRICS/MAP50(B)').name).toBe(
      'METRICS/MAP50(B)',
    );
  });

  it('keeps aliases to their task: a mask key is custom under detection', () => {
    expect(createMetricClassifier('object_detection').normaliseName('metrics/mAP50(M)').name).toBe(
      'metrics/mAP50(M)',
    );
    expect(createMetricClassifier('semantic_segmentation').normaliseName('val_accuracy').name).toBe(
      'val_accuracy',
    );
  });

  it('leaves Lightning _step values and other param groups custom', () => {
    const c = createMetricClassifier('object_detection');
    expect(c.normaliseName('train_loss_step').name).toBe('train_loss_step');
    expect(c.normaliseName('lr/pg1').name).toBe('lr/pg1');
  });

  it('does not map keypoint mAP to pck, nor MMSegmentation percent keys to miou', () => {
    expect(createMetricClassifier('pose_estimation').normaliseName('metrics/mAP50(P)').name).not.toBe('pck');
    expect(createMetricClassifier('semantic_segmentation').normaliseName('mIoU').name).toBe('mIoU');
  });
});

describe('classify: tiers and conversion', () => {
  it('sorts verdicts by reported name and sets tiers', () => {
    const verdicts = createMetricClassifier('image_classification').classify({
      zeta: 1,
      val_loss: 0.3,
      accuracy: 0.9,
      'metrics/accuracy_top5': 0.99,
    });
    expect(verdicts.map((v) => [v.reportedName, v.name, v.tier])).toEqual([
      ['accuracy', 'accuracy', 'primary'],
      ['metrics/accuracy_top5', 'top5_accuracy', 'standard'],
      ['val_loss', 'val_loss', 'standard'],
      ['zeta', 'zeta', 'custom'],
    ]);
    expect(verdicts.map((v) => v.reason)).toEqual(['', '', '', '']);
  });

  it('attaches the definition to accepted metrics that have one', () => {
    const v = byName(createMetricClassifier('image_classification').classify({ accuracy: 0.5, other: 1 }));
    expect(v.accuracy?.definition?.label).toBe('Accuracy');
    expect(v.other?.definition).toBeUndefined();
    expect(v.other && 'definition' in v.other).toBe(false);
  });

  it('converts timm percentages to fractions, exactly', () => {
    const v = byName(
      createMetricClassifier('image_classification').classify({ eval_top1: 91.2, eval_top5: 99.5 }),
    );
    expect(v.eval_top1).toMatchObject({ name: 'accuracy', tier: 'primary', value: 0.912 });
    expect(v.eval_top1?.reason).toBe('converted from percent (×0.01)');
    expect(v.eval_top5).toMatchObject({ name: 'top5_accuracy', tier: 'standard', value: 0.995 });
  });

  it('stores a full timm summary row under canonical names', () => {
    expect(
      stored('image_classification', {
        epoch: 3,
        train_loss: 2.1,
        eval_loss: 1.5,
        eval_top1: 76.5,
        eval_top5: 93.25,
        lr: 0.0005,
      }),
    ).toEqual({
      epoch: 3,
      train_loss: 2.1,
      val_loss: 1.5,
      accuracy: 0.765,
      top5_accuracy: 0.9325,
      learning_rate: 0.0005,
    });
  });

  it('stores an Ultralytics pose epoch under canonical names', () => {
    expect(
      stored('pose_estimation', {
        'metrics/mAP50(B)': 0.8,
        'metrics/mAP50(P)': 0.7,
        'metrics/mAP50-95(P)': 0.5,
        'train/pose_loss': 4.2,
        'train/kobj_loss': 0.6,
        'lr/pg0': 0.01,
        'lr/pg1': 0.01,
      }),
    ).toEqual({
      mAP50: 0.8,
      pose_mAP50: 0.7,
      'pose_mAP50-95': 0.5,
      train_pose_loss: 4.2,
      train_kobj_loss: 0.6,
      learning_rate: 0.01,
      'lr/pg1': 0.01,
    });
  });

  it('treats custom definitions as custom tier, with their definition', () => {
    const def: MetricDefinition = {
      name: 'f1',
      label: 'F1',
      format: 'percent',
      higherIsBetter: true,
      description: 'F1 score.',
    };
    const classifier = createMetricClassifier('object_detection', [def]);
    expect(classifier.definitionOf('f1')).toEqual(def);
    expect(classifier.definitionOf('mAP50')?.label).toBe('mAP@0.5');
    expect(classifier.definitionOf('nope')).toBeUndefined();
    const [verdict] = classifier.classify({ f1: 0.5 });
    expect(verdict).toMatchObject({ tier: 'custom', name: 'f1', value: 0.5, definition: def });
  });

  it('handles names that exist on Object.prototype', () => {
    const metrics = JSON.parse('{"__proto__": 1, "constructor": 2, "toString": 3}') as Record<string, number>;
    const verdicts = createMetricClassifier('object_detection').classify(metrics);
    expect(verdicts.map((v) => [v.reportedName, v.tier, v.value])).toEqual([
      ['__proto__', 'custom', 1],
      ['constructor', 'custom', 2],
      ['toString', 'custom', 3],
    ]);
  });

  it('returns nothing for no metrics', () => {
    expect(createMetricClassifier('pose_estimation').classify({})).toEqual([]);
  });
});

describe('classify: collisions', () => {
  it('keeps the exact canonical spelling and rejects the alias, naming the winner', () => {
    const v = byName(
      createMetricClassifier('image_classification').classify({ eval_top1: 91, accuracy: 0.9 }),
    );
    expect(v.accuracy).toMatchObject({ tier: 'primary', value: 0.9 });
    expect(v.eval_top1).toMatchObject({ tier: 'rejected', name: '' });
    expect(v.eval_top1?.reason).toBe(
      "'eval_top1' and 'accuracy' both mean 'accuracy'; kept 'accuracy' — report only one of them",
    );
  });

  it('keeps the canonical spelling even when it sorts last', () => {
    const v = byName(
      createMetricClassifier('object_detection').classify({ 'lr/pg0': 0.1, learning_rate: 0.2, lr: 0.3 }),
    );
    expect(v.learning_rate?.tier).toBe('standard');
    expect(v['lr/pg0']?.tier).toBe('rejected');
    expect(v.lr?.tier).toBe('rejected');
    expect(v.lr?.reason).toContain("kept 'learning_rate'");
  });

  it('without the canonical spelling, keeps the first alias in sorted order', () => {
    const v = byName(
      createMetricClassifier('object_detection').classify({ 'metrics/mAP50B': 0.5, 'metrics/mAP50(B)': 0.6 }),
    );
    // '(' (U+0028) sorts before 'B' (U+0042).
    expect(v['metrics/mAP50(B)']).toMatchObject({ tier: 'primary', name: 'mAP50', value: 0.6 });
    expect(v['metrics/mAP50B']).toMatchObject({ tier: 'rejected', name: '' });
    expect(v['metrics/mAP50B']?.reason).toContain("kept 'metrics/mAP50(B)'");
  });

  it('reads Keras’ accuracy next to val_accuracy as training accuracy: the validation value is the primary', () => {
    const classifier = createMetricClassifier('image_classification');
    // Keras 3 model.fit logs, one epoch: training first, validation with a val_ prefix.
    const v = byName(classifier.classify({ accuracy: 0.99, loss: 0.05, val_accuracy: 0.9, val_loss: 0.4 }));
    expect(v.val_accuracy).toMatchObject({ tier: 'primary', name: 'accuracy', value: 0.9, reason: '' });
    expect(v.accuracy).toMatchObject({ tier: 'standard', name: 'train_accuracy', value: 0.99 });
    expect(v.accuracy?.reason).toBe(
      "read as train_accuracy: Keras reports the training value as 'accuracy' next to 'val_accuracy'",
    );
    expect(v.loss).toMatchObject({ name: 'train_loss' });
    expect(v.val_loss).toMatchObject({ name: 'val_loss' });
    // The same for the metric names Keras takes from sparse/categorical accuracy.
    const sparse = byName(
      classifier.classify({ sparse_categorical_accuracy: 0.8, val_sparse_categorical_accuracy: 0.7 }),
    );
    expect(sparse.val_sparse_categorical_accuracy).toMatchObject({ tier: 'primary', value: 0.7 });
    expect(sparse.sparse_categorical_accuracy).toMatchObject({ name: 'train_accuracy', value: 0.8 });
  });

  it('keeps a lone accuracy as the primary, and an explicit train_accuracy wins over a paired one', () => {
    const classifier = createMetricClassifier('image_classification');
    expect(byName(classifier.classify({ accuracy: 0.9 })).accuracy).toMatchObject({ tier: 'primary' });
    const v = byName(classifier.classify({ accuracy: 0.99, train_accuracy: 0.98, val_accuracy: 0.9 }));
    expect(v.val_accuracy).toMatchObject({ tier: 'primary', value: 0.9 });
    expect(v.train_accuracy).toMatchObject({ tier: 'standard', value: 0.98 });
    expect(v.accuracy).toMatchObject({ tier: 'rejected' });
    expect(v.accuracy?.reason).toContain("both mean 'train_accuracy'");
  });

  it('states each pair in the catalog with its framework', () => {
    const pairs = createMetricClassifier('image_classification').catalog.trainingValidationPairs;
    expect(pairs).toContainEqual({
      framework: 'Keras',
      training: 'accuracy',
      validation: 'val_accuracy',
      trainingName: 'train_accuracy',
    });
    expect(
      createMetricClassifier('image_classification').normaliseNames(['accuracy', 'val_accuracy']),
    ).toEqual([
      expect.objectContaining({ name: 'train_accuracy', scale: 1 }),
      { name: 'accuracy', scale: 1 },
    ]);
  });
});

describe('classify: percent range', () => {
  it('rejects a percentage sent for a fraction, saying what to report', () => {
    const [verdict] = createMetricClassifier('image_classification').classify({ accuracy: 95 });
    expect(verdict).toMatchObject({ tier: 'rejected', name: '', value: 95 });
    expect(verdict?.reason).toBe('accuracy is a fraction in [0, 1]; got 95 — report 0.95');
  });

  it('names the alias when the value came through one', () => {
    const [verdict] = createMetricClassifier('image_classification').classify({ val_accuracy: 91.2 });
    expect(verdict?.reason).toBe(
      "accuracy (reported as 'val_accuracy') is a fraction in [0, 1]; got 91.2 — report 0.912",
    );
  });

  it('talks in the reported unit for a scaled alias', () => {
    const [verdict] = createMetricClassifier('image_classification').classify({ eval_top1: 9120 });
    expect(verdict?.tier).toBe('rejected');
    expect(verdict?.value).toBe(91.2);
    expect(verdict?.reason).toContain("report 'eval_top1' in [0, 100]");
  });

  it.each([-0.01, 1.0000001, 250])('rejects %d for a percent metric', (value) => {
    const [verdict] = createMetricClassifier('semantic_segmentation').classify({ miou: value });
    expect(verdict?.tier).toBe('rejected');
  });

  it('asks for a fraction when the value is no percentage either', () => {
    const [verdict] = createMetricClassifier('semantic_segmentation').classify({ miou: -3 });
    expect(verdict?.reason).toBe('miou is a fraction in [0, 1]; got -3 — report a fraction between 0 and 1');
  });

  it.each([0, 1, 0.5])('accepts the bounds and inside: %d', (value) => {
    const [verdict] = createMetricClassifier('semantic_segmentation').classify({ miou: value });
    expect(verdict?.tier).toBe('primary');
  });

  it('range-checks custom percent metrics but not floats or unknown metrics', () => {
    const classifier = createMetricClassifier('object_detection', [
      { name: 'f1', label: 'F1', format: 'percent', higherIsBetter: true, description: 'F1.' },
    ]);
    const v = byName(classifier.classify({ f1: 3, train_box_loss: 3, whatever: 300 }));
    expect(v.f1?.tier).toBe('rejected');
    expect(v.train_box_loss?.tier).toBe('standard');
    expect(v.whatever?.tier).toBe('custom');
  });
});

describe('classify: non-finite values', () => {
  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])(
    'stores %d faithfully',
    (value) => {
      const [verdict] = createMetricClassifier('image_classification').classify({ accuracy: value });
      expect(verdict?.tier).toBe('primary');
      expect(verdict?.reason).toBe('not finite');
      expect(Object.is(verdict?.value, value)).toBe(true);
    },
  );

  it('keeps NaN through a scaled alias and notes both', () => {
    const [verdict] = createMetricClassifier('image_classification').classify({ eval_top1: Number.NaN });
    expect(verdict?.value).toBeNaN();
    expect(verdict?.reason).toBe('converted from percent (×0.01); not finite');
  });

  it('never range-checks non-finite percent values', () => {
    const [verdict] = createMetricClassifier('image_classification').classify({
      accuracy: Number.POSITIVE_INFINITY,
    });
    expect(verdict?.tier).toBe('primary');
  });
});

describe('createMetricClassifier: custom definitions', () => {
  const def = (name: string, extra: Partial<MetricDefinition> = {}): MetricDefinition => ({
    name,
    label: name,
    format: 'float',
    higherIsBetter: true,
    description: 'A metric.',
    ...extra,
  });

  it('refuses to redefine a standard metric', () => {
    expect(() => createMetricClassifier('object_detection', [def('mAP50')])).toThrow(CatalogError);
    expect(() => createMetricClassifier('object_detection', [def('mAP50')])).toThrow(
      "custom metric #1: 'mAP50' is a standard metric of object_detection and cannot be redefined",
    );
  });

  it('refuses to define an alias of a standard metric', () => {
    expect(() => createMetricClassifier('object_detection', [def('ok'), def('metrics/mAP50(B)')])).toThrow(
      "custom metric #2: 'metrics/mAP50(B)' is an alias of the standard metric 'mAP50'",
    );
  });

  it('allows a name that is standard only in another task', () => {
    expect(() => createMetricClassifier('object_detection', [def('miou')])).not.toThrow();
  });

  it('refuses a repeated name', () => {
    expect(() => createMetricClassifier('pose_estimation', [def('f1'), def('f1')])).toThrow(
      "custom metric #2: 'f1' is defined twice",
    );
  });

  it.each([
    ['', /is empty/],
    [' f1', /whitespace/],
    ['f\u00001', /control character U\+0000/],
    ['x'.repeat(251), /at most 250/],
  ])('refuses the bad name %j', (name, message) => {
    expect(() => createMetricClassifier('pose_estimation', [def(name)])).toThrow(message);
  });

  it('refuses an unknown format', () => {
    expect(() =>
      createMetricClassifier('pose_estimation', [
        def('f1', { format: 'ratio' as MetricDefinition['format'] }),
      ]),
    ).toThrow(/use 'percent', 'float' or 'int'/);
  });

  it('copies the definitions, so later changes by the caller do not leak in', () => {
    const mine = { ...def('f1') };
    const classifier = createMetricClassifier('pose_estimation', [mine]);
    mine.label = 'changed';
    expect(classifier.definitionOf('f1')?.label).toBe('f1');
  });

  it('refuses an unknown task', () => {
    expect(() => createMetricClassifier('nope' as TaskType)).toThrow(CatalogError);
  });
});

describe('applyScale', () => {
  it('keeps the decimal digits reported when it converts a percentage', () => {
    expect(applyScale(88.2728, 0.01)).toBe(0.882728); // timm's eval_top1
    expect(88.2728 / 100).toBe(0.8827280000000001); // why: dividing is not enough
    expect(applyScale(95, 0.01)).toBe(0.95);
    expect(95 * 0.01).not.toBe(0.95); // the product is 0.9500000000000001
    expect(applyScale(57, 0.01)).toBe(0.57);
    expect(applyScale(99.99999999999999, 0.01)).toBe(0.9999999999999999);
    expect(applyScale(-12.5, 0.01)).toBe(-0.125);
    expect(applyScale(1e-7, 0.01)).toBe(1e-9);
    expect(applyScale(1.5e21, 0.01)).toBe(1.5e19);
    expect(applyScale(0.882728, 100)).toBe(88.2728);
  });

  it('keeps the digits for every percentage with three decimals (a sweep)', () => {
    // i / 1000 and i / 100000 are the doubles nearest to the decimals i·10⁻³ and i·10⁻⁵ (a division of
    // exact integers rounds once), so the fraction of a reported x.yyy must be exactly i / 100000.
    let divisionWrong = 0;
    for (let i = 0; i <= 100_000; i++) {
      expect(applyScale(i / 1000, 0.01)).toBe(i / 100_000);
      if (i / 1000 / 100 !== i / 100_000) divisionWrong++;
    }
    expect(divisionWrong).toBeGreaterThan(1000); // what dividing by 100 got wrong
  });

  it('multiplies by any other scale and passes scale 1, zeros and non-finite values through', () => {
    expect(applyScale(3, 2.5)).toBe(7.5);
    expect(applyScale(0.3, 1)).toBe(0.3);
    expect(applyScale(Number.NEGATIVE_INFINITY, 0.01)).toBe(Number.NEGATIVE_INFINITY);
    expect(applyScale(Number.NaN, 0.01)).toBeNaN();
    expect(Object.is(applyScale(-0, 0.01), -0)).toBe(true);
    expect(applyScale(0, 0.01)).toBe(0);
  });
});
