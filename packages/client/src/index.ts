// The public surface of @training-callbacks/client. Named exports only.
export type { StatusCode } from '@training-callbacks/grpc-adapter';
export { RpcError, Status } from '@training-callbacks/grpc-adapter';
export type { Artifact, BestEpoch, Job, MetricVerdict, TaskCatalog } from '@training-callbacks/proto';
export { TaskType } from '@training-callbacks/proto';
export { UPLOAD_CHUNK_BYTES } from './artifact-files.ts';
export type { BatchOptions, BatchStats } from './batch-reporter.ts';
export { DEFAULT_BATCH_OPTIONS } from './batch-reporter.ts';
export type { Connection, ConnectionOptions } from './connection.ts';
export { bearerTokenInterceptor, resolveConnection } from './connection.ts';
export type { Losses } from './losses.ts';
export type { MetricFormatName, OutcomeName, TaskTypeName } from './names.ts';
export { TASK_TYPE_NAMES, toTaskType } from './names.ts';
export { collectAll, listAll, pages } from './pages.ts';
export { DEFAULT_MAX_QUEUED_REPORTS } from './report-queue.ts';
export type { RetryPolicy } from './retry.ts';
export { backoffDelay, DEFAULT_RETRY_POLICY, isRetryable, statusClass } from './retry.ts';
export type { RunTrainingOptions } from './run-training.ts';
export { runTraining } from './run-training.ts';
export type {
  CallbacksState,
  ClientStats,
  CustomMetric,
  Delivery,
  DeliveryReport,
  EpochEndResult,
  FlushOptions,
  FlushResult,
  Metrics,
  TrainBeginResult,
  TrainEndOptions,
  TrainEndResult,
  TrainingCallbacksClient,
  TrainingCallbacksOptions,
} from './training-callbacks.ts';
export {
  DEFAULT_ADDRESS,
  DEFAULT_CHANNEL_OPTIONS,
  DEFAULT_DEADLINE_MS,
  DEFAULT_EXIT_FLUSH_TIMEOUT_MS,
  DEFAULT_FLUSH_TIMEOUT_MS,
  TrainingCallbacks,
} from './training-callbacks.ts';
