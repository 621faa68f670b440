import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  test: {
    include: ['src/**/*.spec.ts'],
    // Each file starts real sidecar processes; on 2 cores, running files one by one is faster and steadier.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
