// Names for the contract's enums, as model developers write them ("object_detection", "failed",
// "percent"). The values come from the generated descriptors (`enumNames`) and the name types from
// the metric catalog, so this file re-types no list of the contract.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import type {
  MetricFormat as CatalogFormat,
  TaskType as CatalogTaskType,
} from '@training-callbacks/metric-catalog';
import {
  enumNames,
  type MetricFormat,
  MetricFormatSchema,
  type TaskType,
  TaskTypeSchema,
  type TrainingOutcome,
  TrainingOutcomeSchema,
} from '@training-callbacks/proto';

/**
 * A task type by name: the lower-case proto enum name without its `TASK_TYPE_` prefix, as the metric
 * catalog and the Python client spell it.
 */
export type TaskTypeName = CatalogTaskType;

/** How a training run ended, by name. */
export type OutcomeName = 'completed' | 'failed' | 'cancelled';

/** How a custom metric is displayed, by name. */
export type MetricFormatName = CatalogFormat;

/** "a, b or c" */
function choices(names: readonly string[]): string {
  return names.length < 2 ? names.join('') : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`;
}

const taskTypes = enumNames<TaskTypeName>()(TaskTypeSchema);
const outcomes = enumNames<OutcomeName>()(TrainingOutcomeSchema);
const formats = enumNames<MetricFormatName>()(MetricFormatSchema);

/** The five task types, in proto enum order. */
export const TASK_TYPE_NAMES: readonly TaskTypeName[] = Object.freeze(taskTypes.names());

/**
 * Turns a task type name ("object_detection", case-insensitive, "TASK_TYPE_" prefix allowed) or a proto
 * enum value into the proto enum. Throws an INVALID_ARGUMENT {@link RpcError} naming the valid choices.
 */
export function toTaskType(value: TaskTypeName | TaskType | string): TaskType {
  const found =
    typeof value === 'number'
      ? taskTypes.name(value) !== undefined
        ? value
        : undefined
      : typeof value === 'string'
        ? taskTypes.parse(value)
        : undefined;
  if (found !== undefined) return found;
  throw new RpcError(
    Status.INVALID_ARGUMENT,
    `taskType ${JSON.stringify(value)} is not a task type; use one of ${TASK_TYPE_NAMES.join(', ')}`,
  );
}

/** Turns an outcome name into the proto enum; throws an INVALID_ARGUMENT {@link RpcError} otherwise. */
export function toOutcome(value: OutcomeName): TrainingOutcome {
  const found = typeof value === 'string' ? outcomes.parse(value) : undefined;
  if (found === undefined) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `outcome ${JSON.stringify(value)} is not an outcome; use ${choices(outcomes.names())}`,
    );
  }
  return found;
}

/** Turns a format name into the proto enum; throws an INVALID_ARGUMENT {@link RpcError} otherwise. */
export function toMetricFormat(value: MetricFormatName): MetricFormat {
  const found = typeof value === 'string' ? formats.parse(value) : undefined;
  if (found === undefined) {
    throw new RpcError(
      Status.INVALID_ARGUMENT,
      `metric format ${JSON.stringify(value)} is not a format; use ${choices(formats.names())}`,
    );
  }
  return found;
}
