import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    // Some specs start real sidecar processes and a real PostgreSQL in hooks (seconds on a busy machine).
    hookTimeout: 120_000,
    // Worker threads started by the code under test (the MLflow sync thread) run on Node itself, not
    // through Vitest: resolve the workspace packages to their sources there too.
    execArgv: ['--conditions=@training-callbacks/source'],
  },
});
