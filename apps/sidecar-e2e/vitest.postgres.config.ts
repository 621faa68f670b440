// The e2e suite's second run: the same specs on the PostgreSQL dialect (`--db postgres://…`), every
// sidecar on its own fresh database of one real PostgreSQL server (src/postgres-global-setup.ts).
// Specs about the SQLite file itself (a damaged file, its lock, a full disk under it, reading the file
// to check what was committed) stay in the SQLite run only: see SQLITE_ONLY.
import { defineConfig } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

/** Specs that run on both dialects. The others read or break the SQLite file (SQLITE_ONLY below). */
export const BOTH_DIALECTS = [
  'src/json-logs.spec.ts',
  'src/list-pages.spec.ts',
  'src/mlflow-cli.spec.ts',
  'src/mlflow-remirror.spec.ts',
  'src/observability.spec.ts',
  'src/prometheus.spec.ts',
  'src/security.spec.ts',
  'src/watch.spec.ts',
  'src/shared-postgres-*.spec.ts',
];

/**
 * SQLite only, and why: they open the sidecar's SQLite file (better-sqlite3, `dbPath`) to check what was
 * committed, damage it, lock it or fill the disk under it. To move one to both dialects, read the
 * database through the store or `PostgresServer.sql` instead.
 */
export const SQLITE_ONLY = [
  'artifact-store',
  'bad-input',
  'batch-streams',
  'client-losses',
  'durability',
  'image',
  'lifecycle',
  'mlflow-faults',
  'mlflow-mirror',
  'mlflow-pod-rehearsal',
  'mlflow-shutdown-drain',
  'mlflow-verdicts',
  'readme-examples',
  'startup-protection',
  'storage-faults',
  'training-jobs',
  'values',
  'verdicts',
  'fuzz',
];

export default defineConfig(() => {
  return {
    ...sourceConditions,
    test: {
      include: BOTH_DIALECTS,
      globalSetup: ['src/mlflow-global-setup.ts', 'src/postgres-global-setup.ts'],
      fileParallelism: false,
      testTimeout: 60_000,
      hookTimeout: 600_000,
    },
  };
});
