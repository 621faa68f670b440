import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  // Real SQLite files on a shared, busy machine can take seconds; no test here measures speed.
  test: { include: ['src/**/*.spec.ts'], testTimeout: 30_000 },
});
