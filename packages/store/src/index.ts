// Public surface of @training-callbacks/store: explicit named exports, `export type` for types.

export type { CopyProgress, CopyResult } from './copy-database.ts';
export { CopyRefusedError, copyDatabase } from './copy-database.ts';
export { postgresCode, redactedDatabaseUrl } from './postgres-code.ts';
export type { DatabaseFileKind, DatabaseLock, DatabaseRefusal } from './sqlite-file.ts';
export {
  DATABASE_FILE_SUFFIXES,
  DatabaseOpenError,
  lockDatabase,
  SIDECAR_APPLICATION_ID,
  sqliteCode,
} from './sqlite-file.ts';
export { dialectOf, openStore } from './store.ts';
export type { StoreErrorKind } from './store-error.ts';
export { StoreError } from './store-error.ts';
export type {
  ArtifactPage,
  ArtifactRecord,
  BatchAppendResult,
  BatchBlock,
  BatchBlockPage,
  BestEpoch,
  BestEpochRule,
  ChangeKind,
  ChangePosition,
  ChangeRecord,
  ChangesQuery,
  ClientLossesRecord,
  CustomMetricDefinition,
  EndCause,
  EndingJob,
  EndJobInput,
  EpochPage,
  EpochRecord,
  ExpiredLease,
  JobRecord,
  JobSnapshot,
  JobStatus,
  LeaseRenewal,
  LeaseVerdict,
  ListedArtifact,
  ListedBatchBlock,
  ListJobsPage,
  ListJobsQuery,
  LostJobInput,
  MetricSourceRecord,
  MetricSourcesWrite,
  MirrorState,
  NewJob,
  OperationalCounts,
  OutboxClaimTerms,
  OutboxItemInput,
  OutboxStatus,
  OutboxWrite,
  RenewLeaseOptions,
  ReopenJobChanges,
  SavedEpoch,
  SaveEpochInput,
  Store,
  StoreDialect,
  StoredArtifact,
  StoredBatchBlock,
  StoredOutboxItem,
  StoreOptions,
  TrainerRecord,
} from './types.ts';
export { LOST_CAUSES } from './types.ts';
