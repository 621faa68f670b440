// Public surface of @training-callbacks/store: explicit named exports, `export type` for types.
export { openStore } from './store.ts';
export type { StoreErrorKind } from './store-error.ts';
export { StoreError } from './store-error.ts';
export type {
  ArtifactRecord,
  BatchBlock,
  CustomMetricDefinition,
  EndJobInput,
  EpochRecord,
  JobRecord,
  JobStatus,
  ListJobsPage,
  ListJobsQuery,
  NewJob,
  ReopenJobChanges,
  SaveEpochInput,
  Store,
  StoreDialect,
  StoreOptions,
} from './types.ts';
