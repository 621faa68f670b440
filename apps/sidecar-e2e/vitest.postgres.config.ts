// The e2e suite's second run: the same specs on the PostgreSQL dialect (`--db postgres://…`), every
// sidecar on its own fresh database of one real PostgreSQL server (src/postgres-global-setup.ts).
// Specs about the SQLite file itself (a damaged or foreign file, its lock, a full disk under it) stay in
// the SQLite run only: see SQLITE_ONLY.
import { defineConfig } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

/**
 * Specs that run on both dialects. They read what was committed through the sidecar's read RPCs or
 * src/database.ts, which reads either dialect; the few tests in them about the SQLite file itself are
 * skipped here (ON_POSTGRES).
 */
export const BOTH_DIALECTS = [
  'src/artifact-store.spec.ts',
  'src/bad-input.spec.ts',
  'src/batch-streams.spec.ts',
  'src/client-losses.spec.ts',
  'src/durability.spec.ts',
  'src/json-logs.spec.ts',
  'src/lifecycle.spec.ts',
  'src/list-pages.spec.ts',
  'src/mlflow-cli.spec.ts',
  'src/mlflow-faults.spec.ts',
  'src/mlflow-mirror.spec.ts',
  'src/mlflow-pod-rehearsal.spec.ts',
  'src/mlflow-remirror.spec.ts',
  'src/mlflow-shutdown-drain.spec.ts',
  'src/mlflow-verdicts.spec.ts',
  'src/observability.spec.ts',
  'src/prometheus.spec.ts',
  'src/readme-examples.spec.ts',
  'src/security.spec.ts',
  'src/training-jobs.spec.ts',
  'src/values.spec.ts',
  'src/verdicts.spec.ts',
  'src/watch.spec.ts',
  'src/fuzz/fuzz.spec.ts',
  'src/image.spec.ts',
  'src/shared-postgres-*.spec.ts',
];

/**
 * SQLite only, and why: each is about the SQLite file itself, which a PostgreSQL sidecar does not have.
 * - startup-protection: a damaged file, a foreign SQLite file, a file that is no database, an empty
 *   file, and the file's lock against a second sidecar.
 * - storage-faults: a full disk under the file, and another process holding the file's write lock.
 */
export const SQLITE_ONLY = ['startup-protection', 'storage-faults'];

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
