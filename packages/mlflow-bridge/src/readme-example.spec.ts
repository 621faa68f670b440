// The README's two examples, read from the README at test time and run unchanged — as one program, the
// second going on from the first, as the README says — against this run's real MLflow server and a real
// store on a temp SQLite file (the README's paths mapped into a temp dir); then what the README says
// they give is read back from MLflow, and its result comment is checked.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  CHECK_PRELUDE,
  fencedBlock,
  runTypeScript,
  withResultChecks,
} from '@training-callbacks/readme-testing';
import { expect, inject, it } from 'vitest';
import { createMlflowClient } from './client.ts';

const README = 'packages/mlflow-bridge/README.md';
/** This package: the examples' imports resolve to its dependencies. */
const HERE = path.join(import.meta.dirname, '..');
const DB_PATH = "dbPath: 'training-callbacks.sqlite'";
const ARTIFACT_DIR = "'/var/lib/sidecar/artifacts/";

it('README "Example": the mirror, then the worker alone, give job-42 the run the README describes', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlflow-readme-'));
  const mlflow = createMlflowClient({ trackingUri: inject('mlflowUrl') });
  try {
    const sidecarWay = fencedBlock(README, 'ts', 'Example', 0).code;
    const workerAlone = fencedBlock(README, 'ts', 'Example', 1).code;
    expect(sidecarWay).toContain(DB_PATH);
    expect(workerAlone).toContain(ARTIFACT_DIR);
    await mkdir(path.join(dir, 'job-42'));
    await writeFile(path.join(dir, 'job-42', 'best.pt'), 'weights');
    const { code, checks } = withResultChecks(
      sidecarWay.replace(DB_PATH, `dbPath: ${JSON.stringify(path.join(dir, 'training-callbacks.sqlite'))}`) +
        workerAlone.replaceAll(ARTIFACT_DIR, `'${dir}/`),
    );
    expect(checks).toBe(1);
    const run = await runTypeScript(code, {
      cwd: HERE,
      prelude: CHECK_PRELUDE,
      env: { MLFLOW_TRACKING_URI: inject('mlflowUrl') },
      timeoutMs: 120_000,
    });
    expect(run.stderr, run.stdout).toBe('');
    expect(run.code, run.stdout).toBe(0);
    expect(run.stdout.trim().split('\n').at(-1)).toBe(`checks passed: ${checks}`);

    const experiment = await mlflow.getExperimentByName('job_job-42');
    expect(experiment).toBeDefined();
    const runs = await mlflow.findRunsForJob(experiment!.experimentId, 'job-42');
    expect(runs.map((r) => r.runName)).toEqual(['job_job-42']);
    const { info, data } = await mlflow.getRun(runs[0]!.runId);
    expect(data.tags).toMatchObject({
      'training_callbacks.job_id': 'job-42',
      job_id: 'job-42',
      task: 'object_detection',
      framework: 'ultralytics',
      model: 'yolo11n',
    });
    expect(data.params).toEqual({ lr0: '0.01', epochs: '100' });
    const history = async (key: string) =>
      (await mlflow.getMetricHistory(info.runId, key))
        .map((m) => [m.step, m.value])
        .sort((a, b) => a[0]! - b[0]!);
    expect(await history('metrics/mAP50B')).toEqual([
      [0, 0.41],
      [1, 0.45],
    ]);
    expect(await history('val/loss')).toEqual([[1, Number.NaN]]);
    expect(await history('train/loss')).toEqual([
      [0, 1.9],
      [1, 1.7],
      [2, 1.6],
    ]);
    expect(await history('final_metrics/mAP50B')).toEqual([[99, 0.62]]);
    expect((await mlflow.listArtifacts(info.runId, 'weights')).map((a) => a.path)).toEqual([
      'weights/best.pt',
    ]);
    expect(info.status).toBe('FINISHED');
    expect(info.endTime).toBeGreaterThanOrEqual(info.startTime);
  } finally {
    await mlflow.close();
    await rm(dir, { recursive: true, force: true });
  }
});
