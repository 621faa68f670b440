// Public surface of @training-callbacks/store: explicit named exports, `export type` for types.
export type { OutboxReaderPlan } from './outbox-reader.ts';
export { openStore } from './store.ts';
export type { StoreErrorKind } from './store-error.ts';
export { StoreError } from './store-error.ts';
export type {
  ArtifactRecord,
  BatchAppendResult,
  BatchBlock,
  ChangeKind,
  ChangeRecord,
  ChangesQuery,
  ClientLossesRecord,
  CustomMetricDefinition,
  EndJobInput,
  EpochRecord,
  JobRecord,
  JobSnapshot,
  JobStatus,
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
