// `training-callbacks db copy` as an operator runs it: a job reported to a sidecar on its SQLite file,
// the sidecar stopped, the file copied into a real PostgreSQL by the real binary, and a sidecar on that
// PostgreSQL serving the job as it was.

import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startPostgres } from '@training-callbacks/postgres-testing';
import { describe, expect, it, onTestFinished } from 'vitest';
import { startSidecarProcess } from '../testing.ts';
import { runCli } from './cli-process.ts';
import { CLI_EXIT_CODES } from './exit-codes.ts';

const RESULTS_CSV = path.join(import.meta.dirname, 'testdata', 'results.csv');
const README = path.join(import.meta.dirname, '..', '..', '..', '..', 'README.md');

/** The `training-callbacks db copy …` line of the README's scale section, as arguments. */
function readmeCopyCommand(from: string, to: string): string[] {
  const readme = readFileSync(README, 'utf8');
  const section = readme.slice(readme.indexOf('## Scale: many sidecars on one PostgreSQL'));
  const line = /^\s*training-callbacks (db copy .*)$/m.exec(section)?.[1];
  if (!line) throw new Error('README: no `training-callbacks db copy` line in the scale section');
  const args = line.trim().split(/\s+/);
  expect(args).toEqual([
    'db',
    'copy',
    '--from',
    './data/training-callbacks.sqlite',
    '--to',
    'postgres://tc@db:5432/tc',
  ]);
  return args.map((a) => (a.startsWith('./data/') ? from : a.startsWith('postgres://') ? to : a));
}

describe('training-callbacks db copy', { timeout: 180_000 }, () => {
  it('moves the jobs of an SQLite file into an empty PostgreSQL; a second copy is refused', async () => {
    await using pg = await startPostgres();
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-db-copy-'));
    onTestFinished(() => rm(dataDir, { recursive: true, force: true }));
    let sqlite: string;
    let shownBefore: string;
    {
      await using sidecar = await startSidecarProcess({
        args: ['--quiet'],
        dataDir,
        dbPath: path.join(dataDir, 'pod.sqlite'),
      });
      sqlite = sidecar.dbPath;
      const env = { TRAINING_CALLBACKS_ADDRESS: sidecar.address };
      const imported = await runCli(['import-csv', RESULTS_CSV, '--job', 'moved', '--model', 'yolo11n'], env);
      expect(imported.code, imported.stderr).toBe(0);
      shownBefore = (await runCli(['jobs', 'show', 'moved', '--json'], env)).stdout;
    }
    // The README's command, with this test's file and server in place of its examples.
    const copy = await runCli([...readmeCopyCommand(sqlite, pg.url), '--json']);
    expect(copy.code, copy.stderr).toBe(CLI_EXIT_CODES.ok.code);
    expect(JSON.parse(copy.stdout).rows).toMatchObject({ training_job: 1, training_metric: 3 });
    expect(copy.stderr).toMatch(/training_job: 1 row\(s\)/);

    await using moved = await startSidecarProcess({ args: ['--quiet'], dbPath: pg.url });
    const shownAfter = (
      await runCli(['jobs', 'show', 'moved', '--json'], { TRAINING_CALLBACKS_ADDRESS: moved.address })
    ).stdout;
    const comparable = (json: string) => {
      const { job } = JSON.parse(json);
      delete job.mlflowSync; // the destination sidecar runs without MLflow too; nothing else may differ
      return job;
    };
    expect(comparable(shownAfter)).toEqual(comparable(shownBefore));

    const missing = await runCli(['db', 'copy', '--from', path.join(dataDir, 'nope.sqlite'), '--to', pg.url]);
    expect(missing.code).toBe(CLI_EXIT_CODES.refused.code);
    expect(missing.stderr).toMatch(/there is no database at .*nope\.sqlite/);
    const again = await runCli(['db', 'copy', '--from', sqlite, '--to', pg.url]);
    expect(again.code).toBe(CLI_EXIT_CODES.refused.code);
    expect(again.stderr).toMatch(/already holds 1 job\(s\): copy into an empty database/);
  });
});
