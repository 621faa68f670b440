// The README's example, read from the README at test time and run unchanged, with its result comments checked.
import path from 'node:path';
import {
  CHECK_PRELUDE,
  fencedBlock,
  runTypeScript,
  withResultChecks,
} from '@training-callbacks/readme-testing';
import { expect, it } from 'vitest';

it('README "Example": decodeBatchRequest gives the typed columns the README shows', async () => {
  const { code, checks } = withResultChecks(fencedBlock('packages/proto/README.md', 'ts', 'Example').code);
  expect(checks).toBe(3);
  const run = await runTypeScript(code, {
    cwd: path.join(import.meta.dirname, '..'),
    prelude: CHECK_PRELUDE,
  });
  expect(run.stderr).toBe('');
  expect(run.stdout).toContain('checks passed: 3');
  expect(run.code).toBe(0);
});
