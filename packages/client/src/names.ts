import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { MetricFormat, TaskType, TrainingOutcome } from '@training-callbacks/proto';

/**
 * A task type by name: the lower-case proto enum name without its `TASK_TYPE_` prefix, as the metric
 * catalog and the Python client spell it.
 */
export type TaskTypeName =
  | 'image_classification'
  | 'object_detection'
  | 'instance_segmentation'
  | 'semantic_segmentation'
  | 'pose_estimation';

/** The five task types, in proto enum order. */
export const TASK_TYPE_NAMES: readonly TaskTypeName[] = Object.freeze([
  'image_classification',
  'object_detection',
  'instance_segmentation',
  'semantic_segmentation',
  'pose_estimation',
]);

const TASK_TYPES: Readonly<Record<TaskTypeName, TaskType>> = {
  image_classification: TaskType.IMAGE_CLASSIFICATION,
  object_detection: TaskType.OBJECT_DETECTION,
  instance_segmentation: TaskType.INSTANCE_SEGMENTATION,
  semantic_segmentation: TaskType.SEMANTIC_SEGMENTATION,
  pose_estimation: TaskType.POSE_ESTIMATION,
};

/**
 * Turns a task type name ("object_detection", case-insensitive, "TASK_TYPE_" prefix allowed) or a proto
 * enum value into the proto enum. Throws an INVALID_ARGUMENT {@link RpcError} naming the valid choices.
 */
export function toTaskType(value: TaskTypeName | TaskType | string): TaskType {
  if (typeof value === 'number') {
    if (value >= TaskType.IMAGE_CLASSIFICATION && value <= TaskType.POSE_ESTIMATION) return value;
  } else if (typeof value === 'string') {
    const key = value.toLowerCase().replace(/^task_type_/, '') as TaskTypeName;
    const found = Object.hasOwn(TASK_TYPES, key) ? TASK_TYPES[key] : undefined;
    if (found !== undefined) return found;
  }
  throw new RpcError(
    Status.INVALID_ARGUMENT,
    `taskType ${JSON.stringify(value)} is not a task type; use one of ${TASK_TYPE_NAMES.join(', ')}`,
  );
}

/** How a training run ended, by name. */
export type OutcomeName = 'completed' | 'failed' | 'cancelled';

const OUTCOMES: Readonly<Record<OutcomeName, TrainingOutcome>> = {
  completed: TrainingOutcome.COMPLETED,
  failed: TrainingOutcome.FAILED,
  cancelled: TrainingOutcome.CANCELLED,
};

/** Turns an outcome name into the proto enum; throws an INVALID_ARGUMENT {@link RpcError} otherwise. */
export function toOutcome(value: OutcomeName): TrainingOutcome {
  const found = Object.hasOwn(OUTCOMES, value) ? OUTCOMES[value] : undefined;
  if (found === undefined) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `outcome ${JSON.stringify(value)} is not an outcome; use completed, failed or cancelled`,
    );
  }
  return found;
}

/** How a custom metric is displayed, by name. */
export type MetricFormatName = 'percent' | 'float' | 'int';

const FORMATS: Readonly<Record<MetricFormatName, MetricFormat>> = {
  percent: MetricFormat.PERCENT,
  float: MetricFormat.FLOAT,
  int: MetricFormat.INT,
};

/** Turns a format name into the proto enum; throws an INVALID_ARGUMENT {@link RpcError} otherwise. */
export function toMetricFormat(value: MetricFormatName): MetricFormat {
  const found = Object.hasOwn(FORMATS, value) ? FORMATS[value] : undefined;
  if (found === undefined) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `metric format ${JSON.stringify(value)} is not a format; use percent, float or int`,
    );
  }
  return found;
}
