import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    // One file at a time: each starts a sidecar and Chromium (one also MLflow), and the timings the
    // browser tests print should not measure a neighbour.
    maxWorkers: 1,
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
