import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    // Many sidecars on one PostgreSQL: only in the PostgreSQL run (vitest.postgres.config.ts).
    exclude: ['src/shared-postgres-*.spec.ts'],
    // One real MLflow server for the run (for the mlflow-*.spec.ts files), as in packages/mlflow-bridge.
    globalSetup: ['src/mlflow-global-setup.ts'],
    // Each file starts real sidecar processes; on 2 cores, running files one by one is faster and steadier.
    fileParallelism: false,
    testTimeout: 60_000,
    // The first run may create .venv/mlflow from PyPI (minutes); the server needs ~10 s to start.
    hookTimeout: 600_000,
  },
});
