import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createMlflowClient,
  JOB_ID_TAG,
  type Metric,
  type MlflowClient,
  PARAM_CHANGED_TAG_PREFIX,
} from './client.ts';
import { MlflowError } from './errors.ts';
import { freePort, startHttpFaultInjector } from './testing/index.ts';

const url = inject('mlflowUrl');
let client: MlflowClient;
let dir: string;
const uid = () => randomUUID().slice(0, 8);

beforeAll(async () => {
  client = createMlflowClient({ trackingUri: url });
  dir = await mkdtemp(join(tmpdir(), 'bridge-client-'));
});
afterAll(async () => {
  await client.close();
  await rm(dir, { recursive: true, force: true });
});

describe('experiments', () => {
  it('get-or-create is safe when several clients race', async () => {
    const name = `job_race-${uid()}`;
    const other = createMlflowClient({ trackingUri: url });
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => (i % 2 ? client : other).ensureExperiment(name)),
    );
    await other.close();
    expect(new Set(results.map((r) => r.experimentId)).size).toBe(1);
    expect(results[0]).toMatchObject({ name, lifecycleStage: 'active' });
    expect(results[0]?.artifactLocation).toMatch(/^mlflow-artifacts:/);
  });

  it('restores a soft-deleted experiment of that name', async () => {
    const name = `job_deleted-${uid()}`;
    const e = await client.ensureExperiment(name);
    await client.deleteExperiment(e.experimentId);
    expect((await client.getExperimentByName(name))?.lifecycleStage).toBe('deleted');
    const again = await client.ensureExperiment(name);
    expect(again).toMatchObject({ experimentId: e.experimentId, lifecycleStage: 'active' });
  });
});

describe('one run per job', () => {
  const opts = (jobId: string) => ({
    jobId,
    experimentName: `job_${jobId}`,
    runName: `job_${jobId}`,
    startTimeMs: 1_718_000_000_000,
    tags: { task: 'object_detection' },
  });
  const runsOf = async (jobId: string) => {
    const e = await client.getExperimentByName(`job_${jobId}`);
    return client.searchRuns({ experimentIds: [e!.experimentId] });
  };

  it('a retried ensureRunForJob returns the same run', async () => {
    const jobId = `retry-${uid()}`;
    const a = await client.ensureRunForJob(opts(jobId));
    const b = await client.ensureRunForJob(opts(jobId));
    expect(a.created).toBe(true);
    expect(b).toMatchObject({ created: false, run: { runId: a.run.runId } });
    expect(a.run).toMatchObject({ status: 'RUNNING', startTime: 1_718_000_000_000, runName: `job_${jobId}` });
    const runs = await runsOf(jobId);
    expect(runs).toHaveLength(1);
    expect(runs[0]?.data.tags).toMatchObject({ [JOB_ID_TAG]: jobId, task: 'object_detection' });
  });

  it("leaves no experiment behind but the job's own", async () => {
    const jobId = `tidy-${uid()}`;
    await client.ensureRunForJob(opts(jobId));
    await client.ensureRunForJob(opts(jobId));
    const all = await client.searchExperiments({ viewType: 'ALL' });
    expect(all.filter((e) => e.name.includes(jobId)).map((e) => e.name)).toEqual([`job_${jobId}`]);
  });

  it("finds the job's run by its tag also for ids the search filter cannot quote", async () => {
    for (const jobId of [`quote'${uid()}`, `back\\slash-${uid()}`, `ünï-${uid()}`]) {
      const a = await client.ensureRunForJob(opts(jobId));
      const b = await client.ensureRunForJob(opts(jobId));
      expect(b).toMatchObject({ created: false, run: { runId: a.run.runId } });
      expect(await runsOf(jobId)).toHaveLength(1);
    }
  });

  it("a deleted run is not the job's run any more: the next one is created", async () => {
    const jobId = `gone-${uid()}`;
    const a = await client.ensureRunForJob(opts(jobId));
    await client.deleteRun(a.run.runId);
    const b = await client.ensureRunForJob(opts(jobId));
    expect(b.created).toBe(true);
    expect(b.run.runId).not.toBe(a.run.runId);
    expect((await runsOf(jobId)).map((r) => r.info.runId)).toEqual([b.run.runId]);
  });

  it('a crash between runs/create and storing the run id is recovered by the job tag', async () => {
    const jobId = `crash-${uid()}`;
    const e = await client.ensureExperiment(`job_${jobId}`);
    const orphan = await client.createRun({
      experimentId: e.experimentId,
      runName: 'x',
      startTimeMs: 1,
      tags: { [JOB_ID_TAG]: jobId },
    });
    const r = await client.ensureRunForJob(opts(jobId));
    expect(r).toMatchObject({ created: false, run: { runId: orphan.runId } });
    expect(await runsOf(jobId)).toHaveLength(1);
  });

  it('a runs/create whose answer is lost is not repeated into a second run', async () => {
    await using proxy = await startHttpFaultInjector(url);
    const c = createMlflowClient({ trackingUri: proxy.url });
    const jobId = `lost-${uid()}`;
    proxy.add({ match: /runs\/create/, action: 'drop-after-forward', times: 1 });
    const first = await c.ensureRunForJob(opts(jobId)).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(MlflowError);
    expect((first as MlflowError).retryable).toBe(true);
    const second = await c.ensureRunForJob(opts(jobId));
    await c.close();
    const runs = await runsOf(jobId);
    expect(runs.map((r) => r.info.runId)).toEqual([second.run.runId]);
  });
});

describe('runs', () => {
  let runId: string;
  let artifactUri: string;
  beforeAll(async () => {
    const r = await client.ensureRunForJob({
      jobId: `run-${uid()}`,
      experimentName: `job_run-${uid()}`,
      runName: 'r',
      startTimeMs: Date.now(),
    });
    runId = r.run.runId;
    artifactUri = r.run.artifactUri;
  });

  it('params: chunks of ≤100, identical re-log is fine, a changed value goes to a tag', async () => {
    const params = Object.fromEntries(Array.from({ length: 250 }, (_, i) => [`p${i}`, String(i)]));
    params['lr(0)'] = '0.01';
    params.long = 'v'.repeat(7000);
    expect(await client.logParams(runId, params)).toEqual({ logged: 252, unchanged: 0, changed: [] });
    expect(await client.logParams(runId, params)).toEqual({ logged: 0, unchanged: 252, changed: [] });
    const r = await client.logParams(runId, { ...params, p7: 'changed', extra: 'x' });
    expect(r).toMatchObject({ logged: 1, unchanged: 251 });
    expect(r.changed).toEqual([
      { key: 'p7', loggedValue: '7', newValue: 'changed', tag: `${PARAM_CHANGED_TAG_PREFIX}p7` },
    ]);
    const run = await client.getRun(runId);
    expect(Object.keys(run.data.params)).toHaveLength(253);
    expect(run.data.params).toMatchObject({ p7: '7', lr0: '0.01', extra: 'x' });
    expect(run.data.params.long).toHaveLength(6000);
    expect(run.data.tags[`${PARAM_CHANGED_TAG_PREFIX}p7`]).toBe('changed');
  });

  it('metrics: > 1000 points split into log-batch requests, NaN/±Infinity accepted, resend is a no-op', async () => {
    const points: Metric[] = [];
    for (let step = 0; step < 1200; step++) {
      points.push({ key: 'train/loss', value: 1 / (step + 1), timestamp: 1_000_000 + step, step });
      points.push({
        key: 'odd',
        value: step % 3 === 0 ? Number.NaN : step % 3 === 1 ? Infinity : -Infinity,
        timestamp: 5,
        step,
      });
    }
    expect(await client.logMetrics(runId, points)).toBe(3);
    await client.logMetrics(runId, points.slice(500, 1700)); // a retry of part of it
    const loss = await client.getMetricHistory(runId, 'train/loss');
    expect(loss).toHaveLength(1200);
    expect(loss.map((m) => m.step).sort((a, b) => a - b)).toEqual(Array.from({ length: 1200 }, (_, i) => i));
    const odd = await client.getMetricHistory(runId, 'odd');
    expect(odd).toHaveLength(1200);
    const byStep = new Map(odd.map((m) => [m.step, m.value]));
    expect(byStep.get(0)).toBeNaN();
    // MLflow's SQL store clamps ±Infinity to ±Number.MAX_VALUE.
    expect(byStep.get(1)).toBe(Number.MAX_VALUE);
    expect(byStep.get(2)).toBe(-Number.MAX_VALUE);
  });

  it('status and end time', async () => {
    await client.setTerminated(runId, 'KILLED', 1_718_000_123_456);
    const run = await client.getRun(runId);
    expect(run.info).toMatchObject({ status: 'KILLED', endTime: 1_718_000_123_456 });
    await client.updateRun(runId, { status: 'RUNNING' });
    expect((await client.getRun(runId)).info.status).toBe('RUNNING');
  });

  it('artifacts: streamed upload with progress, byte-identical read-back', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    const file = join(dir, 'best.pt');
    await writeFile(file, content);
    const progress: number[] = [];
    await client.uploadArtifact({
      artifactUri,
      localPath: file,
      artifactPath: 'weights/best.pt',
      onProgress: (sent, total) => {
        expect(total).toBe(content.length);
        progress.push(sent);
      },
    });
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toBe(content.length);
    expect(await client.listArtifacts(runId, 'weights')).toEqual([
      { path: 'weights/best.pt', isDir: false, fileSize: content.length },
    ]);
    expect((await client.downloadArtifact(artifactUri, 'weights/best.pt')).equals(content)).toBe(true);
  });

  it('rejects unsafe artifact paths and foreign artifact roots without retrying', async () => {
    const file = join(dir, 'x.txt');
    await writeFile(file, 'x');
    for (const [uri, path] of [
      [artifactUri, '../escape.txt'],
      [artifactUri, '/abs.txt'],
      ['s3://bucket/1/run/artifacts', 'x.txt'],
      ['/srv/mlruns/1/run/artifacts', 'x.txt'],
    ] as const) {
      const e = await client
        .uploadArtifact({ artifactUri: uri, localPath: file, artifactPath: path })
        .catch((x) => x);
      expect(e).toMatchObject({ retryable: false, kind: 'config' });
    }
  });
});

describe('errors from a real server', () => {
  it('keeps MLflow error_code and message; 4xx is not retryable', async () => {
    const e = (await client.getRun('0123456789abcdef0123456789abcdef').catch((x) => x)) as MlflowError;
    expect(e).toMatchObject({ status: 404, errorCode: 'RESOURCE_DOES_NOT_EXIST', retryable: false });
    expect(e.message).toMatch(/Run with id=0123456789abcdef0123456789abcdef not found/);
    const bad = (await client
      .logBatch('0123456789abcdef0123456789abcdef', {
        metrics: [{ key: 'm(B)', value: 1, timestamp: 1, step: 0 }],
      })
      .catch((x) => x)) as MlflowError;
    expect(bad.retryable).toBe(false);
    expect(bad.status).toBeGreaterThanOrEqual(400);
  });

  it('a refused connection is a retryable network error', async () => {
    const c = createMlflowClient({ trackingUri: `http://127.0.0.1:${await freePort()}` });
    const e = (await c.version().catch((x) => x)) as MlflowError;
    await c.close();
    expect(e).toMatchObject({ kind: 'network', retryable: true });
    expect(e.message).toMatch(/ECONNREFUSED/);
  });

  it('a 403 host-header refusal is a configuration error', async () => {
    await using proxy = await startHttpFaultInjector(url);
    proxy.add({ action: 403, body: 'Invalid Host header - possible DNS rebinding attack detected' });
    const c = createMlflowClient({ trackingUri: proxy.url });
    const e = (await c.getRun('x').catch((x) => x)) as MlflowError;
    await c.close();
    expect(e).toMatchObject({ kind: 'config', retryable: false, status: 403 });
  });

  it('the version endpoint answers', async () => {
    expect(await client.version()).toMatch(/^3\./);
  });
});
