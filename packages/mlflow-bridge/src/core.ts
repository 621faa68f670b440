// The parts of the bridge that load no HTTP client — configuration, errors, the outbox item builders
// and the sidecar's items built from its stored job — for code that runs whether or not MLflow is
// configured (the sidecar's config parsing and RPC handlers). Importing the package root also loads
// the REST client (with `node:http` / `node:https` and TLS) and the sync worker, which a sidecar that
// may never mirror anything has no use for; `./mirror` starts the sync thread, which loads them there.
export { type MlflowAuth, type MlflowConfig, type MlflowTlsConfig, mlflowConfigFromEnv } from './config.ts';
export { isMlflowError, MlflowError, type MlflowErrorKind } from './errors.ts';
export {
  artifactItem,
  BATCH_ITEM_KIND,
  BATCH_KEY_PREFIX,
  endItems,
  epochItem,
  jobBegunItem,
  jobCopyItems,
  lostItems,
  type MetricSource,
  MetricSources,
  metricSourcesItem,
  mlflowBatchKey,
  mlflowMetricName,
  mlflowMetrics,
  RUN_STATUS,
  revivedItems,
} from './mirror-items.ts';
export {
  type ArtifactPayload,
  type BatchMetricsPayload,
  type EpochMetricsPayload,
  type FinalMetricsPayload,
  type JobBegunPayload,
  type JobEndedPayload,
  type JobRevivedPayload,
  type MetricSourcesPayload,
  type NewOutboxItem,
  type OutboxItemKind,
  type OutboxPayloads,
  outboxItems,
} from './outbox.ts';
