// The parts of the bridge that load no HTTP client — configuration, errors and the outbox item
// builders — for code that runs whether or not MLflow is configured (the sidecar's config parsing and
// RPC handlers). Importing the package root also loads undici and the worker: ~6 MB of idle memory in
// a sidecar that may never mirror anything.
export { type MlflowAuth, type MlflowConfig, type MlflowTlsConfig, mlflowConfigFromEnv } from './config.ts';
export { isMlflowError, MlflowError, type MlflowErrorKind } from './errors.ts';
export { type JsonNumber, toJsonNumber } from './names.ts';
export {
  type ArtifactPayload,
  type BatchMetricsPayload,
  type EpochMetricsPayload,
  type FinalMetricsPayload,
  type JobBegunPayload,
  type JobEndedPayload,
  type NewOutboxItem,
  type OutboxItemKind,
  type OutboxPayloads,
  outboxItems,
} from './outbox.ts';
