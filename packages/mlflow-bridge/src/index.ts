// The whole bridge: the light parts of `./core` (configuration, errors, outbox items), the REST
// client, the sync worker, the store's outbox as the worker's and the sidecar's mirror.

export {
  type ArtifactFile,
  createMlflowClient,
  type EnsureRunOptions,
  type EnsureRunResult,
  type Experiment,
  JOB_ID_TAG,
  LOG_BATCH_LIMITS,
  MAX_PARAM_VALUE_LENGTH,
  MAX_TAG_VALUE_LENGTH,
  type Metric,
  type MlflowClient,
  type MlflowClientHooks,
  type MlflowRequestOutcome,
  PARAM_CHANGED_TAG_PREFIX,
  type ParamsResult,
  type Run,
  type RunInfo,
  type RunStatus,
  resolveArtifactUrl,
  type UploadArtifactOptions,
} from './client.ts';
export * from './core.ts';
export { isRetryableStatus, parseRetryAfter } from './errors.ts';
export {
  DEFAULT_CLAIM_LEASE_MS,
  type DrainResult,
  type JobSync,
  type Mirror,
  type MirrorOptions,
  mlflowSyncOf,
  type RunningMirror,
  startMirror,
} from './mirror.ts';
export {
  type KeyCollision,
  MAX_KEY_LENGTH,
  MetricKeyMap,
  sanitizeMetricKey,
} from './names.ts';
export type { MlflowJobMirror, MlflowOutbox, OutboxItem } from './outbox.ts';
export {
  type ClaimingOutbox,
  type ClaimOptions,
  claimingOutbox,
  MAX_POINTS_PER_STEP,
  OUTBOX_CALLS,
  type OutboxCall,
  type OutboxCalls,
} from './store-outbox.ts';
export { type MirrorLog, type MirrorLogFields, RUN_GONE_HINT, syncEventLogger } from './sync-log.ts';
export {
  type BackoffOptions,
  createSyncWorker,
  DEFAULT_RETRY_HORIZON_MS,
  DEFAULT_RUN_GONE_HINT,
  END_CAUSE_TAG,
  FINAL_PREFIX,
  METRIC_NAME_TAG_PREFIX,
  REPORTED_AS_TAG_PREFIX,
  type SyncEvent,
  type SyncWorker,
  type SyncWorkerOptions,
  UNIT_TAG_PREFIX,
} from './worker.ts';
