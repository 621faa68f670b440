import type { TaskType } from './task-type.ts';

/**
 * How a metric's value is displayed. `percent` values are always stored as fractions in [0, 1] and
 * displayed as percentages; `float` with four decimals; `int` as a whole number.
 */
export type MetricFormat = 'percent' | 'float' | 'int';

/** The definition of one metric, for display and for best-epoch selection. */
export interface MetricDefinition {
  /** Canonical name, e.g. `mAP50-95`. */
  readonly name: string;
  /** Human label, e.g. `mAP@0.5:0.95`. */
  readonly label: string;
  /** Display format; `percent` values are fractions in [0, 1]. */
  readonly format: MetricFormat;
  /** True when a larger value is better (accuracy), false when smaller is better (loss). */
  readonly higherIsBetter: boolean;
  /** One sentence on what the metric measures. */
  readonly description: string;
}

/** A name under which a framework reports a catalog metric, e.g. Ultralytics `metrics/mAP50(B)`. */
export interface MetricAlias {
  /** The name as the framework reports it (matched exactly, case-sensitively). */
  readonly alias: string;
  /** The canonical name it maps to; always one of the task's standard metrics. */
  readonly name: string;
  /** Multiplier applied to the reported value, e.g. 0.01 for a percentage such as timm's `eval_top1`. */
  readonly scale: number;
}

/**
 * A framework that logs one metric twice in the same report, measured on the training data and on the
 * validation data (Keras' `model.fit`: `accuracy` and `val_accuracy`). When both names are reported
 * together, `training` is read as `trainingName`, and `validation` keeps its alias: the validation
 * value is the one that counts (it picks the best epoch). Reported alone, `training` keeps its usual
 * reading.
 */
export interface TrainingValidationPair {
  /** The framework that reports the pair, e.g. `Keras`. */
  readonly framework: string;
  /** The name of the training value, e.g. `accuracy`. */
  readonly training: string;
  /** The name of the validation value, e.g. `val_accuracy`. */
  readonly validation: string;
  /** The canonical name the training value is stored under, e.g. `train_accuracy`. */
  readonly trainingName: string;
}

/** The metric catalog of one task type. */
export interface TaskCatalog {
  /** The task type. */
  readonly task: TaskType;
  /** Name of the primary metric, the one that picks the best epoch; always `standardMetrics[0].name`. */
  readonly primaryMetric: string;
  /** The task's standard metrics, primary first. */
  readonly standardMetrics: readonly MetricDefinition[];
  /** Framework names that are normalised into canonical names. */
  readonly aliases: readonly MetricAlias[];
  /** Names a framework reports as a training/validation pair (see {@link TrainingValidationPair}). */
  readonly trainingValidationPairs: readonly TrainingValidationPair[];
}
