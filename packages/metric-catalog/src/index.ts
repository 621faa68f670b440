export { applyScale } from './apply-scale.ts';
export { isBetter, selectBestEpoch } from './best-epoch.ts';
export { CatalogError } from './catalog-error.ts';
export { columnValues } from './column-values.ts';
export { formatEpochLine, formatMetricValue } from './format-metric.ts';
export type { MetricClassifier, MetricTier, MetricVerdict } from './metric-classifier.ts';
export { createMetricClassifier } from './metric-classifier.ts';
export type {
  MetricAlias,
  MetricDefinition,
  MetricFormat,
  TaskCatalog,
  TrainingValidationPair,
} from './metric-definition.ts';
export { checkMetricName, METRIC_NAME_MAX_LENGTH } from './metric-name.ts';
export { getTaskCatalog, listTaskCatalogs } from './task-catalog.ts';
export type { TaskType } from './task-type.ts';
export { isTaskType, TASK_TYPES } from './task-type.ts';
