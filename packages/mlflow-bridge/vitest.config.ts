import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    globalSetup: ['src/testing/global-setup.ts'],
    // Worker threads started by the code under test (the mirror's sync thread) run on Node itself, not
    // through Vitest: resolve the workspace packages to their sources there too.
    execArgv: ['--conditions=@training-callbacks/source'],
    // The first run creates .venv/mlflow from PyPI; the server itself needs ~10 s to start.
    hookTimeout: 600_000,
    testTimeout: 60_000,
  },
});
