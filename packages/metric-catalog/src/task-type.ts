/**
 * The kind of model being trained. It selects the metric catalog and the primary metric. The values are
 * the lower-case names of the proto enum `trainingcallbacks.v1.TaskType` without its `TASK_TYPE_` prefix.
 */
export type TaskType =
  | 'image_classification'
  | 'object_detection'
  | 'instance_segmentation'
  | 'semantic_segmentation'
  | 'pose_estimation';

/** Every task type, in the order of the proto enum. */
export const TASK_TYPES: readonly TaskType[] = Object.freeze([
  'image_classification',
  'object_detection',
  'instance_segmentation',
  'semantic_segmentation',
  'pose_estimation',
] as const);

/** True when `value` is one of {@link TASK_TYPES}; a guard for callers that hold an untyped string. */
export function isTaskType(value: unknown): value is TaskType {
  return typeof value === 'string' && (TASK_TYPES as readonly string[]).includes(value);
}
