import { defineProject } from 'vitest/config';
import { sourceConditions } from '../../vitest.shared.ts';

export default defineProject({
  ...sourceConditions,
  // Starting and stopping a real PostgreSQL server in hooks takes seconds on a loaded machine.
  test: { include: ['src/**/*.spec.ts'], testTimeout: 60_000, hookTimeout: 120_000 },
});
