import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  // Real SQLite files on a shared, busy machine can take seconds; no test here measures speed.
  // A PostgreSQL server starts in a spec's first test and stops in afterAll: on a loaded machine that
  // takes longer than Vitest's 10 s hook default.
  test: { include: ['src/**/*.spec.ts'], testTimeout: 30_000, hookTimeout: 120_000 },
});
