import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    globalSetup: ['src/testing/global-setup.ts'],
    // The first run creates .venv/mlflow from PyPI; the server itself needs ~10 s to start.
    hookTimeout: 600_000,
    testTimeout: 60_000,
  },
});
