// Public surface of @training-callbacks/store: explicit named exports, `export type` for types.
export type { OutboxReaderPlan } from './outbox-reader.ts';
export type { DatabaseFileKind, DatabaseLock, DatabaseRefusal } from './sqlite-file.ts';
export { DatabaseOpenError, lockDatabase, SIDECAR_APPLICATION_ID, sqliteCode } from './sqlite-file.ts';
export { openStore } from './store.ts';
export type { StoreErrorKind } from './store-error.ts';
export { StoreError } from './store-error.ts';
export type {
  ArtifactPage,
  ArtifactRecord,
  BatchAppendResult,
  BatchBlock,
  BatchBlockPage,
  ChangeKind,
  ChangeRecord,
  ChangesQuery,
  ClientLossesRecord,
  CustomMetricDefinition,
  EndJobInput,
  EpochPage,
  EpochRecord,
  JobRecord,
  JobSnapshot,
  JobStatus,
  ListedArtifact,
  ListedBatchBlock,
  ListJobsPage,
  ListJobsQuery,
  MirrorState,
  NewJob,
  OperationalCounts,
  OutboxItemInput,
  OutboxReads,
  OutboxStatus,
  OutboxWrite,
  ReopenJobChanges,
  SaveEpochInput,
  Store,
  StoreDialect,
  StoredArtifact,
  StoredBatchBlock,
  StoredOutboxItem,
  StoreOptions,
} from './types.ts';
