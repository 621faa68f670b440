// The catalog itself: one TaskCatalog per task type, written out as data. Every alias names the
// framework that emits it; where a name is ambiguous the comment says which reading was chosen and why.
//
// Conventions:
// - `percent` metrics are stored as fractions in [0, 1]. A framework that reports 0-100 gets scale 0.01.
// - Losses, learning rate: `float`, lower is better.
// - Aliases are exact, case-sensitive matches. A name that is not listed stays as reported (a custom metric).
// - Order of `standardMetrics`: primary, other quality metrics, losses, learning rate.
import type {
  MetricAlias,
  MetricDefinition,
  TaskCatalog,
  TrainingValidationPair,
} from './metric-definition.ts';
import type { TaskType } from './task-type.ts';

// ---------------------------------------------------------------------------------------------------------
// Definitions shared by several tasks.

const TRAIN_LOSS: MetricDefinition = {
  name: 'train_loss',
  label: 'Train loss',
  format: 'float',
  higherIsBetter: false,
  description:
    'Total training loss averaged over the epoch (the sum of the component losses where the model has several).',
};

const VAL_LOSS: MetricDefinition = {
  name: 'val_loss',
  label: 'Val loss',
  format: 'float',
  higherIsBetter: false,
  description:
    'Total loss on the validation set (the sum of the component losses where the model has several).',
};

const LEARNING_RATE: MetricDefinition = {
  name: 'learning_rate',
  label: 'Learning rate',
  format: 'float',
  higherIsBetter: false,
  description:
    'Learning rate of the first optimiser parameter group at the end of the epoch; informational only, its direction is never used to rank epochs.',
};

/**
 * Box (detection) metrics, shared by detection, instance segmentation and pose. `qualified` labels them
 * "Box …" for tasks that also have mask or keypoint versions of the same measures.
 */
function boxMetrics(qualified: boolean): MetricDefinition[] {
  const label = (plain: string, boxed: string): string => (qualified ? boxed : plain);
  return [
    {
      name: 'mAP50',
      label: label('mAP@0.5', 'Box mAP@0.5'),
      format: 'percent',
      higherIsBetter: true,
      description: 'Mean average precision of predicted boxes over all classes at an IoU threshold of 0.5.',
    },
    {
      name: 'mAP50-95',
      label: label('mAP@0.5:0.95', 'Box mAP@0.5:0.95'),
      format: 'percent',
      higherIsBetter: true,
      description:
        'Mean average precision of predicted boxes averaged over IoU thresholds 0.5 to 0.95 in steps of 0.05 (COCO mAP).',
    },
    {
      name: 'precision',
      label: label('Precision', 'Box precision'),
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of predicted boxes that match a ground-truth box, averaged over classes.',
    },
    {
      name: 'recall',
      label: label('Recall', 'Box recall'),
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of ground-truth boxes that are found by a prediction, averaged over classes.',
    },
  ];
}

/** A loss component, e.g. `train_box_loss`. */
function lossComponent(split: 'train' | 'val', part: string, what: string): MetricDefinition {
  const splitLabel = split === 'train' ? 'Train' : 'Val';
  const on = split === 'train' ? 'training' : 'validation';
  return {
    name: `${split}_${part}_loss`,
    label: `${splitLabel} ${part} loss`,
    format: 'float',
    higherIsBetter: false,
    description: `${what} on the ${on} set.`,
  };
}

const BOX_LOSS = 'Box regression loss (localisation error of predicted boxes)';
const CLS_LOSS = 'Classification loss of detected objects';
const DFL_LOSS = 'Distribution focal loss (the box-edge distribution term of Ultralytics YOLOv8 and later)';
const SEG_LOSS = 'Mask segmentation loss of detected instances';
const POSE_LOSS = 'Keypoint location loss (OKS-based) of detected instances';
const KOBJ_LOSS = 'Keypoint visibility (objectness) loss of detected instances';

function lossComponents(parts: readonly (readonly [string, string])[]): MetricDefinition[] {
  return (['train', 'val'] as const).flatMap((split) =>
    parts.map(([part, what]) => lossComponent(split, part, what)),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Aliases shared by every task.

const COMMON_ALIASES: readonly MetricAlias[] = [
  // Hugging Face Trainer logs the training loss as `loss` and evaluation metrics with an `eval_` prefix.
  // Keras logs the training loss as `loss` too. No framework uses a bare `loss` for validation, so
  // `loss` is read as the training loss. (columnValues() still looks at a canonical `loss` first, for a
  // caller that bypasses normalisation.)
  { alias: 'loss', name: 'train_loss', scale: 1 },
  { alias: 'eval_loss', name: 'val_loss', scale: 1 }, // Hugging Face, timm summary.csv
  // Ultralytics classification (`train/loss`, `val/loss`) and Lightning users logging with a `/` group.
  { alias: 'train/loss', name: 'train_loss', scale: 1 },
  { alias: 'val/loss', name: 'val_loss', scale: 1 },
  // Lightning `self.log(..., on_step=True, on_epoch=True)` adds `_epoch`/`_step` suffixes. Only the
  // `_epoch` form is the epoch value; `_step` is the last batch's and is deliberately left custom.
  { alias: 'train_loss_epoch', name: 'train_loss', scale: 1 },
  { alias: 'val_loss_epoch', name: 'val_loss', scale: 1 },
  // Learning rate: timm summary.csv and Keras 2 `lr`; Ultralytics `lr/pg0` (param group 0, the weights;
  // pg1/pg2 are BN weights and biases, which differ only during warm-up, so they stay custom);
  // YOLOv5 `x/lr0` (same grouping); Lightning LearningRateMonitor `lr-<Optimizer>` for a single optimiser.
  { alias: 'lr', name: 'learning_rate', scale: 1 },
  { alias: 'lr/pg0', name: 'learning_rate', scale: 1 },
  { alias: 'x/lr0', name: 'learning_rate', scale: 1 },
  { alias: 'lr-SGD', name: 'learning_rate', scale: 1 },
  { alias: 'lr-Adam', name: 'learning_rate', scale: 1 },
  { alias: 'lr-AdamW', name: 'learning_rate', scale: 1 },
];

// Ultralytics `(B)` box metrics, as in trainer.metrics / results.csv, and the parenthesis-stripped form
// that Ultralytics' own MLflow callback (and Lightning's MLFlowLogger) produces.
const ULTRALYTICS_BOX_ALIASES: readonly MetricAlias[] = [
  { alias: 'metrics/mAP50(B)', name: 'mAP50', scale: 1 },
  { alias: 'metrics/mAP50-95(B)', name: 'mAP50-95', scale: 1 },
  { alias: 'metrics/precision(B)', name: 'precision', scale: 1 },
  { alias: 'metrics/recall(B)', name: 'recall', scale: 1 },
  { alias: 'metrics/mAP50B', name: 'mAP50', scale: 1 },
  { alias: 'metrics/mAP50-95B', name: 'mAP50-95', scale: 1 },
  { alias: 'metrics/precisionB', name: 'precision', scale: 1 },
  { alias: 'metrics/recallB', name: 'recall', scale: 1 },
];

/** Ultralytics loss keys `train/<part>_loss` and `val/<part>_loss` for the given parts. */
function ultralyticsLossAliases(parts: readonly string[]): MetricAlias[] {
  return (['train', 'val'] as const).flatMap((split) =>
    parts.map((part) => ({ alias: `${split}/${part}_loss`, name: `${split}_${part}_loss`, scale: 1 })),
  );
}

/** A Keras training/validation pair: `training` is read as `trainingName` when `validation` comes too. */
function keras(training: string, validation: string, trainingName: string): TrainingValidationPair {
  return { framework: 'Keras', training, validation, trainingName };
}

// ---------------------------------------------------------------------------------------------------------
// image_classification

const IMAGE_CLASSIFICATION: TaskCatalog = {
  task: 'image_classification',
  primaryMetric: 'accuracy',
  standardMetrics: [
    {
      name: 'accuracy',
      label: 'Accuracy',
      format: 'percent',
      higherIsBetter: true,
      description: 'Top-1 accuracy on the validation set.',
    },
    {
      name: 'top5_accuracy',
      label: 'Top-5 accuracy',
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of validation images whose true class is among the five highest-scored classes.',
    },
    {
      name: 'train_accuracy',
      label: 'Train accuracy',
      format: 'percent',
      higherIsBetter: true,
      description: 'Top-1 accuracy on the training set, as measured during the epoch.',
    },
    TRAIN_LOSS,
    VAL_LOSS,
    LEARNING_RATE,
  ],
  aliases: [
    ...COMMON_ALIASES,
    // Ultralytics classify: fractions in [0, 1].
    { alias: 'metrics/accuracy_top1', name: 'accuracy', scale: 1 },
    { alias: 'metrics/accuracy_top5', name: 'top5_accuracy', scale: 1 },
    // timm summary.csv: percentages in [0, 100].
    { alias: 'eval_top1', name: 'accuracy', scale: 0.01 },
    { alias: 'eval_top5', name: 'top5_accuracy', scale: 0.01 },
    // Hugging Face (compute_metrics with evaluate's "accuracy", a fraction).
    { alias: 'eval_accuracy', name: 'accuracy', scale: 1 },
    // Keras: validation results carry a `val_` prefix, training results none. Keras 3 names the metric
    // after its `name` (`accuracy`, `sparse_categorical_accuracy`, ...); Keras 2 used `acc`. Keras'
    // training `accuracy` is spelled like our canonical (validation) `accuracy`: see
    // `trainingValidationPairs` below for how a report holding both is read.
    { alias: 'val_accuracy', name: 'accuracy', scale: 1 },
    { alias: 'val_acc', name: 'accuracy', scale: 1 }, // Keras 2, and the Lightning tutorials' name
    { alias: 'val_sparse_categorical_accuracy', name: 'accuracy', scale: 1 },
    { alias: 'val_categorical_accuracy', name: 'accuracy', scale: 1 },
    // Keras TopKCategoricalAccuracy / SparseTopKCategoricalAccuracy default to k=5.
    { alias: 'val_top_k_categorical_accuracy', name: 'top5_accuracy', scale: 1 },
    { alias: 'val_sparse_top_k_categorical_accuracy', name: 'top5_accuracy', scale: 1 },
    // A bare `acc` is Keras 2's *training* accuracy (its validation twin is `val_acc`). It is read that
    // way rather than as `accuracy`, because picking the best epoch on training accuracy would be wrong.
    { alias: 'acc', name: 'train_accuracy', scale: 1 },
    // Lightning-style names (`self.log("val_acc")`, `"val/acc"`, with optional `_epoch` suffix).
    { alias: 'val/acc', name: 'accuracy', scale: 1 },
    { alias: 'val/accuracy', name: 'accuracy', scale: 1 },
    { alias: 'val_acc_epoch', name: 'accuracy', scale: 1 },
    { alias: 'train_acc', name: 'train_accuracy', scale: 1 },
    { alias: 'train/acc', name: 'train_accuracy', scale: 1 },
    { alias: 'train/accuracy', name: 'train_accuracy', scale: 1 },
    { alias: 'train_acc_epoch', name: 'train_accuracy', scale: 1 },
  ],
  // Keras' model.fit logs every compiled metric twice per epoch: `X` on the training data and `val_X`
  // on the validation data. In a report that holds both, `X` is the training value and `val_X` the
  // primary (best epoch on training accuracy would reward overfitting). `accuracy` alone stays
  // `accuracy`: a custom loop that reports one accuracy reports its validation accuracy.
  // The other frameworks with aliases here name only their validation values like this (Ultralytics
  // `metrics/accuracy_top1`, timm `eval_top1`, Hugging Face `eval_accuracy`, Lightning what the user
  // logs, usually `val_acc`), so no pair is needed for them.
  trainingValidationPairs: [
    keras('accuracy', 'val_accuracy', 'train_accuracy'),
    keras('sparse_categorical_accuracy', 'val_sparse_categorical_accuracy', 'train_accuracy'),
    keras('categorical_accuracy', 'val_categorical_accuracy', 'train_accuracy'),
  ],
};

// ---------------------------------------------------------------------------------------------------------
// object_detection

const OBJECT_DETECTION: TaskCatalog = {
  task: 'object_detection',
  primaryMetric: 'mAP50',
  standardMetrics: [
    ...boxMetrics(false),
    TRAIN_LOSS,
    VAL_LOSS,
    ...lossComponents([
      ['box', BOX_LOSS],
      ['cls', CLS_LOSS],
      ['dfl', DFL_LOSS],
    ]),
    LEARNING_RATE,
  ],
  aliases: [
    ...COMMON_ALIASES,
    ...ULTRALYTICS_BOX_ALIASES,
    ...ultralyticsLossAliases(['box', 'cls', 'dfl']),
    // YOLOv5 (utils/loggers): fractions. Its `obj_loss` has no catalog equivalent and stays custom.
    { alias: 'metrics/mAP_0.5', name: 'mAP50', scale: 1 },
    { alias: 'metrics/mAP_0.5:0.95', name: 'mAP50-95', scale: 1 },
    { alias: 'metrics/precision', name: 'precision', scale: 1 },
    { alias: 'metrics/recall', name: 'recall', scale: 1 },
    // torchmetrics MeanAveragePrecision (used by the Hugging Face detection examples): `map` is COCO
    // mAP@0.5:0.95, `map_50` is mAP@0.5, both fractions. Only listed for detection: under instance
    // segmentation the same keys may be box or mask mAP depending on `iou_type`.
    { alias: 'eval_map', name: 'mAP50-95', scale: 1 },
    { alias: 'eval_map_50', name: 'mAP50', scale: 1 },
    { alias: 'val_map', name: 'mAP50-95', scale: 1 },
    { alias: 'val_map_50', name: 'mAP50', scale: 1 },
    { alias: 'map', name: 'mAP50-95', scale: 1 },
    { alias: 'map_50', name: 'mAP50', scale: 1 },
  ],
  trainingValidationPairs: [],
};

// ---------------------------------------------------------------------------------------------------------
// instance_segmentation

const INSTANCE_SEGMENTATION: TaskCatalog = {
  task: 'instance_segmentation',
  // Box mAP@0.5 as the primary metric, as the contract says (TASK_TYPE_INSTANCE_SEGMENTATION). Mask
  // metrics are standard metrics next to it.
  primaryMetric: 'mAP50',
  standardMetrics: [
    ...boxMetrics(true),
    {
      name: 'mask_mAP50',
      label: 'Mask mAP@0.5',
      format: 'percent',
      higherIsBetter: true,
      description:
        'Mean average precision of predicted masks over all classes at a mask IoU threshold of 0.5.',
    },
    {
      name: 'mask_mAP50-95',
      label: 'Mask mAP@0.5:0.95',
      format: 'percent',
      higherIsBetter: true,
      description: 'Mean average precision of predicted masks averaged over mask IoU thresholds 0.5 to 0.95.',
    },
    {
      name: 'mask_precision',
      label: 'Mask precision',
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of predicted masks that match a ground-truth mask, averaged over classes.',
    },
    {
      name: 'mask_recall',
      label: 'Mask recall',
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of ground-truth masks that are found by a prediction, averaged over classes.',
    },
    TRAIN_LOSS,
    VAL_LOSS,
    ...lossComponents([
      ['box', BOX_LOSS],
      ['seg', SEG_LOSS],
      ['cls', CLS_LOSS],
      ['dfl', DFL_LOSS],
    ]),
    LEARNING_RATE,
  ],
  aliases: [
    ...COMMON_ALIASES,
    ...ULTRALYTICS_BOX_ALIASES,
    // Ultralytics segment: `(M)` mask metrics, raw and parenthesis-stripped.
    { alias: 'metrics/mAP50(M)', name: 'mask_mAP50', scale: 1 },
    { alias: 'metrics/mAP50-95(M)', name: 'mask_mAP50-95', scale: 1 },
    { alias: 'metrics/precision(M)', name: 'mask_precision', scale: 1 },
    { alias: 'metrics/recall(M)', name: 'mask_recall', scale: 1 },
    { alias: 'metrics/mAP50M', name: 'mask_mAP50', scale: 1 },
    { alias: 'metrics/mAP50-95M', name: 'mask_mAP50-95', scale: 1 },
    { alias: 'metrics/precisionM', name: 'mask_precision', scale: 1 },
    { alias: 'metrics/recallM', name: 'mask_recall', scale: 1 },
    ...ultralyticsLossAliases(['box', 'seg', 'cls', 'dfl']),
  ],
  trainingValidationPairs: [],
};

// ---------------------------------------------------------------------------------------------------------
// semantic_segmentation

const SEMANTIC_SEGMENTATION: TaskCatalog = {
  task: 'semantic_segmentation',
  primaryMetric: 'miou',
  standardMetrics: [
    {
      name: 'miou',
      label: 'mIoU',
      format: 'percent',
      higherIsBetter: true,
      description: 'Intersection over union of predicted and true pixels per class, averaged over classes.',
    },
    {
      name: 'pixel_accuracy',
      label: 'Pixel accuracy',
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of all validation pixels whose class is predicted correctly.',
    },
    {
      name: 'mean_accuracy',
      label: 'Mean accuracy',
      format: 'percent',
      higherIsBetter: true,
      description: 'Per-class pixel accuracy (recall) averaged over classes.',
    },
    {
      name: 'dice',
      label: 'Dice',
      format: 'percent',
      higherIsBetter: true,
      description: 'Dice coefficient (F1 of predicted and true pixels) per class, averaged over classes.',
    },
    TRAIN_LOSS,
    VAL_LOSS,
    LEARNING_RATE,
  ],
  aliases: [
    ...COMMON_ALIASES,
    // Hugging Face with evaluate's "mean_iou" metric (fractions), prefixed `eval_` by the Trainer.
    { alias: 'eval_mean_iou', name: 'miou', scale: 1 },
    { alias: 'eval_overall_accuracy', name: 'pixel_accuracy', scale: 1 },
    { alias: 'eval_mean_accuracy', name: 'mean_accuracy', scale: 1 },
    { alias: 'mean_iou', name: 'miou', scale: 1 },
    { alias: 'overall_accuracy', name: 'pixel_accuracy', scale: 1 },
    // Lightning-style names with torchmetrics (fractions).
    { alias: 'val_miou', name: 'miou', scale: 1 },
    { alias: 'val/miou', name: 'miou', scale: 1 },
    { alias: 'val_mean_iou', name: 'miou', scale: 1 },
    { alias: 'val_dice', name: 'dice', scale: 1 },
    { alias: 'val/dice', name: 'dice', scale: 1 },
    // Deliberately absent: MMSegmentation's `mIoU`, `aAcc`, `mAcc`, `mDice`. MMSegmentation reports them
    // as percentages (0-100) but other code uses the same spellings for fractions; a wrong scale would be
    // a silent 100x error, so these stay custom metrics unless the adapter converts them.
  ],
  trainingValidationPairs: [],
};

// ---------------------------------------------------------------------------------------------------------
// pose_estimation

const POSE_ESTIMATION: TaskCatalog = {
  task: 'pose_estimation',
  // PCK as the primary metric, as the contract says (TASK_TYPE_POSE_ESTIMATION). Note: Ultralytics pose
  // reports no PCK (only keypoint mAP), so its jobs get no best epoch unless the adapter computes PCK.
  // Keypoint mAP is deliberately not aliased to `pck`: they are different measures.
  primaryMetric: 'pck',
  standardMetrics: [
    {
      name: 'pck',
      label: 'PCK',
      format: 'percent',
      higherIsBetter: true,
      description:
        'Percentage of correct keypoints: share of predicted keypoints within the trainer-chosen distance threshold of the truth.',
    },
    {
      name: 'pose_mAP50',
      label: 'Pose mAP@0.5',
      format: 'percent',
      higherIsBetter: true,
      description: 'Mean average precision of keypoint predictions at an OKS threshold of 0.5.',
    },
    {
      name: 'pose_mAP50-95',
      label: 'Pose mAP@0.5:0.95',
      format: 'percent',
      higherIsBetter: true,
      description: 'Mean average precision of keypoint predictions averaged over OKS thresholds 0.5 to 0.95.',
    },
    {
      name: 'pose_precision',
      label: 'Pose precision',
      format: 'percent',
      higherIsBetter: true,
      description: 'Share of predicted poses that match a ground-truth pose (by OKS), averaged over classes.',
    },
    {
      name: 'pose_recall',
      label: 'Pose recall',
      format: 'percent',
      higherIsBetter: true,
      description:
        'Share of ground-truth poses that are found by a prediction (by OKS), averaged over classes.',
    },
    ...boxMetrics(true),
    TRAIN_LOSS,
    VAL_LOSS,
    ...lossComponents([
      ['box', BOX_LOSS],
      ['pose', POSE_LOSS],
      ['kobj', KOBJ_LOSS],
      ['cls', CLS_LOSS],
      ['dfl', DFL_LOSS],
    ]),
    LEARNING_RATE,
  ],
  aliases: [
    ...COMMON_ALIASES,
    ...ULTRALYTICS_BOX_ALIASES,
    // Ultralytics pose: `(P)` keypoint metrics, raw and parenthesis-stripped.
    { alias: 'metrics/mAP50(P)', name: 'pose_mAP50', scale: 1 },
    { alias: 'metrics/mAP50-95(P)', name: 'pose_mAP50-95', scale: 1 },
    { alias: 'metrics/precision(P)', name: 'pose_precision', scale: 1 },
    { alias: 'metrics/recall(P)', name: 'pose_recall', scale: 1 },
    { alias: 'metrics/mAP50P', name: 'pose_mAP50', scale: 1 },
    { alias: 'metrics/mAP50-95P', name: 'pose_mAP50-95', scale: 1 },
    { alias: 'metrics/precisionP', name: 'pose_precision', scale: 1 },
    { alias: 'metrics/recallP', name: 'pose_recall', scale: 1 },
    ...ultralyticsLossAliases(['box', 'pose', 'kobj', 'cls', 'dfl']),
    // PCK as spelled by MMPose's PCKAccuracy (`PCK`, a fraction) and Lightning/HF-style prefixes.
    { alias: 'PCK', name: 'pck', scale: 1 },
    { alias: 'val_pck', name: 'pck', scale: 1 },
    { alias: 'val/pck', name: 'pck', scale: 1 },
    { alias: 'eval_pck', name: 'pck', scale: 1 },
  ],
  trainingValidationPairs: [],
};

// ---------------------------------------------------------------------------------------------------------

function freezeCatalog(catalog: TaskCatalog): TaskCatalog {
  return Object.freeze({
    task: catalog.task,
    primaryMetric: catalog.primaryMetric,
    standardMetrics: Object.freeze(catalog.standardMetrics.map((d) => Object.freeze({ ...d }))),
    aliases: Object.freeze(catalog.aliases.map((a) => Object.freeze({ ...a }))),
    trainingValidationPairs: Object.freeze(
      catalog.trainingValidationPairs.map((p) => Object.freeze({ ...p })),
    ),
  });
}

/** The catalog of every task type, deeply frozen. */
export const CATALOGS: Readonly<Record<TaskType, TaskCatalog>> = Object.freeze({
  image_classification: freezeCatalog(IMAGE_CLASSIFICATION),
  object_detection: freezeCatalog(OBJECT_DETECTION),
  instance_segmentation: freezeCatalog(INSTANCE_SEGMENTATION),
  semantic_segmentation: freezeCatalog(SEMANTIC_SEGMENTATION),
  pose_estimation: freezeCatalog(POSE_ESTIMATION),
});
