// The reader and the runner on this package's own README and on small programs: a check that holds
// counts, one that does not fails the run with what the comment said and what it is.
import { expect, it } from 'vitest';
import {
  CHECK_PRELUDE,
  fencedBlock,
  fencedBlocks,
  nextBlock,
  runTypeScript,
  withResultChecks,
} from './readme.ts';

const README = 'packages/readme-testing/README.md';
const HERE = `${import.meta.dirname}/..`;

it('fencedBlock finds the block under its heading, and fails loudly when there is none', () => {
  const example = fencedBlock(README, 'ts', 'Example');
  expect(example.code).toContain("from '@training-callbacks/readme-testing'");
  expect(fencedBlocks(README)[0]).toEqual(example);
  expect(nextBlock(README, example)).toBeUndefined();
  expect(() => fencedBlock(README, 'ts', 'Public API')).toThrow(
    /no ```ts block #0 under the heading Public API/,
  );
});

it("this README's example runs the metric catalog's README example with its checks, as its comment says", async () => {
  const { code, checks } = withResultChecks(fencedBlock(README, 'ts', 'Example').code);
  expect(checks).toBe(1);
  const run = await runTypeScript(code, { cwd: HERE, prelude: CHECK_PRELUDE });
  expect(run.stderr).toBe('');
  expect(run.stdout.trim()).toBe('checks passed: 1');
});

it('withResultChecks: both comment forms become checks that pass when true', async () => {
  const { code, checks } = withResultChecks(
    [
      'const m = new Map([[1, 2n]]);',
      '// m.get(1) → 2n',
      '',
      'Object.assign({ a: 1 }, { b: 2 });',
      '// → { b: 2, … }',
    ].join('\n'),
  );
  expect(checks).toBe(2);
  const run = await runTypeScript(code, { cwd: HERE, prelude: CHECK_PRELUDE });
  expect(run.stderr).toBe('');
  expect(run.stdout.trim()).toBe('checks passed: 2');
});

it('a result comment that is not true fails the run with what it is instead', async () => {
  const { code } = withResultChecks('const n = 3n;\n// n + 1n → 5n\n');
  const run = await runTypeScript(code, { cwd: HERE, prelude: CHECK_PRELUDE });
  expect(run.code).not.toBe(0);
  expect(run.stderr).toContain('README says n + 1n → 5n, but it is 4n');
  expect(run.stdout.trim()).toBe('checks passed: 0');
});
