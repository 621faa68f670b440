// A whole job through the real sidecar process, mirrored into the real MLflow server and read back
// through MLflow's REST API: experiment, the one run, tags, params, full metric histories, final
// metrics, status and end time, artifacts byte for byte; and the read side's mlflow_sync.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks } from '@training-callbacks/proto';
import { startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDatabase } from './database.ts';
import {
  expectExactlyOnce,
  getJob,
  mlflowReader,
  mlflowUrl,
  onlyRunOf,
  type Rpc,
  sha256,
  startMirroredSidecar,
  TaskType,
  TrainingOutcome,
  uniqueJobId,
  until,
  waitInSync,
} from './mlflow-helpers.ts';

const mlflow = mlflowReader();
let sidecar: Awaited<ReturnType<typeof startMirroredSidecar>>['sidecar'];
let rpc: Rpc;

beforeAll(async () => {
  ({ sidecar, rpc } = await startMirroredSidecar(mlflowUrl(), { args: ['--quiet'] }));
});
afterAll(async () => {
  rpc?.close();
  await sidecar?.[Symbol.asyncDispose]();
  await mlflow.close();
});

const EPOCHS = 6;
const acc = (e: number) => 0.5 + e / 20;
const loss = (e: number) => 1 / (e + 1);

describe('mirroring a whole job into MLflow', () => {
  it('creates experiment job_<id> with one run holding everything, read back through the REST API', async () => {
    const jobId = uniqueJobId('whole');
    const begun = await rpc.beginTraining({
      jobId,
      taskType: TaskType.IMAGE_CLASSIFICATION,
      framework: 'timm',
      modelName: 'resnet50',
      params: { lr: '0.001', batch_size: '64', optimizer: 'adamw' },
    });
    expect(begun.job?.mlflowSync?.enabled).toBe(true);

    for (let e = 0; e < EPOCHS; e++) {
      await rpc.beginEpoch({ jobId, epoch: e });
      // Reported names are normalised by the catalog (acc → train_accuracy, val/loss → val_loss); the
      // Ultralytics-style name with parentheses becomes a valid MLflow key.
      await rpc.endEpoch({
        jobId,
        epoch: e,
        metrics: {
          accuracy: acc(e),
          acc: acc(e) + 0.01,
          train_loss: loss(e),
          'val/loss': loss(e) * 1.1,
          'metrics/mAP50(B)': e / 10,
          ...(e === 2 && { grad_norm: Number.NaN }),
        },
      });
    }
    // Batch-level points at step = global step: two streams, two blocks each.
    const stepsPerEpoch = 50;
    const batchValue = (step: number, col: number) => 2 - step / 1000 + col;
    for (let e = 0; e < 2; e++) {
      const first = e * stepsPerEpoch;
      const block = (from: number, rows: number) => ({
        epoch: e,
        names: ['loss', 'lr'],
        steps: Array.from({ length: rows }, (_, i) => BigInt(from + i)),
        values: Array.from({ length: rows * 2 }, (_, i) =>
          batchValue(from + Math.floor(i / 2), i % 2 === 0 ? 0 : 1),
        ),
      });
      const r = await rpc.reportBatchMetrics([
        { jobId, blocks: [block(first, 30)] },
        { jobId, blocks: [block(first + 30, 20)] },
      ]);
      expect(r.acceptedPoints).toBe(BigInt(stepsPerEpoch * 2));
    }
    // Artifacts: one small, one large enough to get upload progress in the log (streamed upload).
    const files = {
      'weights/best.pt': randomBytes(17 * 1024 * 1024 + 17),
      'results.csv': Buffer.from('epoch,accuracy\n0,0.5\n'),
    };
    for (const [artifactPath, data] of Object.entries(files)) {
      const chunks = [];
      for (let i = 0; i < data.length; i += 1 << 20) chunks.push(data.subarray(i, i + (1 << 20)));
      await rpc.uploadArtifact([
        {
          part: {
            case: 'header',
            value: { jobId, artifactPath, sizeBytes: BigInt(data.length), sha256: sha256(data) },
          },
        },
        ...chunks.map((value) => ({ part: { case: 'chunk' as const, value } })),
      ]);
    }
    const ended = await rpc.endTraining({
      jobId,
      outcome: TrainingOutcome.COMPLETED,
      finalMetrics: { accuracy: 0.93, train_loss: 0.12 },
    });

    const job = await waitInSync(rpc, jobId);
    expect(job.mlflowSync).toMatchObject({
      enabled: true,
      inSync: true,
      pendingItems: 0n,
      oldestPendingAgeSeconds: 0,
      parkedError: '',
    });

    const run = await onlyRunOf(mlflow, jobId);
    // The ids are in the job, on the wire and in the database.
    expect(job.mlflowRunId).toBe(run.info.runId);
    expect(job.mlflowExperimentId).toBe(run.info.experimentId);
    const [row] = await queryDatabase<{
      mlflow_run_id: string;
      mlflow_experiment_id: string;
      mlflow_artifact_uri: string;
      final_accuracy: number;
    }>(
      sidecar.dbPath,
      'select mlflow_run_id, mlflow_experiment_id, mlflow_artifact_uri, final_accuracy from training_job where job_id = ?',
      jobId,
    );
    expect(row).toMatchObject({ mlflow_run_id: run.info.runId, final_accuracy: 0.93 });
    expect(row!.mlflow_artifact_uri).toBe(run.info.artifactUri);
    expect(await queryDatabase(sidecar.dbPath, 'select * from outbox_item where job_id = ?', jobId)).toEqual(
      [],
    );
    // Drained to the end, the job's outbox claim is given up (another sidecar may drain what comes next).
    await until(
      async () =>
        (await queryDatabase(sidecar.dbPath, 'select * from outbox_claim where job_id = ?', jobId)).length ===
        0,
      5_000,
      'the drained job’s claim released',
    );

    // Run: name, status, times, tags, params.
    expect(run.info.runName).toBe(`job_${jobId}`);
    expect(run.info.status).toBe('FINISHED');
    expect(run.info.endTime).toBe(
      Number(ended.job!.endedAt!.seconds) * 1000 + Math.floor(ended.job!.endedAt!.nanos / 1e6),
    );
    expect(run.info.startTime).toBeLessThanOrEqual(run.info.endTime!);
    expect(run.data.tags).toMatchObject({
      'training_callbacks.job_id': jobId,
      job_id: jobId,
      task: 'image_classification',
      framework: 'timm',
      model: 'resnet50',
      'training_callbacks.metric_name.metrics/mAP50B': 'metrics/mAP50(B)',
    });
    expect(run.data.params).toEqual({ lr: '0.001', batch_size: '64', optimizer: 'adamw' });

    // Epoch metrics: full histories, step = epoch, each point once, under the catalog's names.
    const epochs = Array.from({ length: EPOCHS }, (_, e) => e);
    await expectExactlyOnce(mlflow, run.info.runId, 'accuracy', epochs, acc);
    await expectExactlyOnce(mlflow, run.info.runId, 'train_accuracy', epochs, (e) => acc(e) + 0.01);
    await expectExactlyOnce(mlflow, run.info.runId, 'train_loss', epochs, loss);
    await expectExactlyOnce(mlflow, run.info.runId, 'val_loss', epochs, (e) => loss(e) * 1.1);
    await expectExactlyOnce(mlflow, run.info.runId, 'metrics/mAP50B', epochs, (e) => e / 10);
    const nan = await mlflow.getMetricHistory(run.info.runId, 'grad_norm');
    expect(nan).toHaveLength(1);
    expect(nan[0]!.value).toBeNaN();
    // Epoch points carry the time the sidecar received the epoch.
    const stored = (await rpc.listEpochs({ jobId })).epochs;
    const history = await mlflow.getMetricHistory(run.info.runId, 'accuracy');
    for (const m of history) {
      const t = stored.find((s) => s.epoch === m.step)!.timestamp!;
      expect(m.timestamp).toBe(Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6));
    }

    // Batch metrics: step = global step, under batch/<catalog name> (loss → train_loss, lr →
    // learning_rate), apart from the epoch histories.
    const steps = Array.from({ length: 2 * stepsPerEpoch }, (_, i) => i);
    await expectExactlyOnce(mlflow, run.info.runId, 'batch/train_loss', steps, (s) => batchValue(s, 0));
    await expectExactlyOnce(mlflow, run.info.runId, 'batch/learning_rate', steps, (s) => batchValue(s, 1));

    // Final metrics: final_ prefix, at the last epoch.
    await expectExactlyOnce(mlflow, run.info.runId, 'final_accuracy', [EPOCHS - 1], () => 0.93);
    await expectExactlyOnce(mlflow, run.info.runId, 'final_train_loss', [EPOCHS - 1], () => 0.12);

    // Artifacts, byte for byte.
    const listed = await mlflow.listArtifacts(run.info.runId, 'weights');
    expect(listed.map((f) => f.path)).toEqual(['weights/best.pt']);
    for (const [artifactPath, data] of Object.entries(files)) {
      const back = await mlflow.downloadArtifact(run.info.artifactUri, artifactPath);
      expect(sha256(back)).toBe(sha256(data));
      expect(back.length).toBe(data.length);
    }
    // The large upload is in the sidecar's log, start and end; the small one is not.
    const log = sidecar.output.filter((line) => line.startsWith(`[${jobId}] MLflow: upload`));
    expect(log[0]).toBe(`[${jobId}] MLflow: uploading weights/best.pt (17.0 MiB)`);
    expect(log.at(-1)).toMatch(
      new RegExp(
        `^\\[${jobId}\\] MLflow: uploaded weights/best\\.pt \\(17\\.0 MiB in [\\d.]+ s, [\\d.]+ MiB/s\\)$`,
      ),
    );
    expect(log.some((line) => line.includes('results.csv'))).toBe(false);
  });

  it('resumes a cancelled job into the same run and finishes it', async () => {
    const jobId = uniqueJobId('resume');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, params: { lr: '0.1' } });
    await rpc.endEpoch({ jobId, epoch: 0, metrics: { accuracy: 0.4 } });
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.CANCELLED });
    let job = await waitInSync(rpc, jobId);
    expect((await mlflow.getRun(job.mlflowRunId)).info.status).toBe('KILLED');

    // Resent (identical) epoch report and a resume: still one run, each point once.
    const resumed = await rpc.beginTraining({
      jobId,
      taskType: TaskType.IMAGE_CLASSIFICATION,
      startEpoch: 1,
      params: { lr: '0.1', warmup: '3' },
    });
    expect(resumed.resumed).toBe(true);
    await rpc.endEpoch({ jobId, epoch: 1, metrics: { accuracy: 0.6 } });
    await rpc.endEpoch({ jobId, epoch: 1, metrics: { accuracy: 0.6 } });
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED, finalMetrics: { accuracy: 0.6 } });
    job = await waitInSync(rpc, jobId);
    const run = await onlyRunOf(mlflow, jobId);
    expect(run.info.runId).toBe(job.mlflowRunId);
    expect(run.info.status).toBe('FINISHED');
    expect(run.data.params).toEqual({ lr: '0.1', warmup: '3' });
    await expectExactlyOnce(mlflow, run.info.runId, 'accuracy', [0, 1]);
    await expectExactlyOnce(mlflow, run.info.runId, 'final_accuracy', [1]);
  });

  it('names the run and sets the extra tags from BeginTraining; a resume renames, a re-mirror restores them', async () => {
    const jobId = uniqueJobId('named');
    await rpc.beginTraining({
      jobId,
      taskType: TaskType.IMAGE_CLASSIFICATION,
      runName: 'resnet50 · lr sweep 1',
      tags: { team: 'vision', 'sweep/id': 's-17' },
    });
    let job = await waitInSync(rpc, jobId);
    expect(job).toMatchObject({
      runName: 'resnet50 · lr sweep 1',
      tags: { team: 'vision', 'sweep/id': 's-17' },
    });
    let run = await mlflow.getRun(job.mlflowRunId);
    expect(run.info.runName).toBe('resnet50 · lr sweep 1');
    expect(run.data.tags).toMatchObject({ team: 'vision', 'sweep/id': 's-17', task: 'image_classification' });

    // A resume with another name and other tags: the same run, renamed, the new tags set.
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.CANCELLED });
    const resumed = await rpc.beginTraining({
      jobId,
      taskType: TaskType.IMAGE_CLASSIFICATION,
      startEpoch: 1,
      runName: 'resnet50 · lr sweep 2',
      tags: { team: 'vision-2' },
    });
    expect(resumed.job).toMatchObject({ runName: 'resnet50 · lr sweep 2', tags: { team: 'vision-2' } });
    job = await waitInSync(rpc, jobId);
    run = await onlyRunOf(mlflow, jobId);
    expect(run.info.runId).toBe(job.mlflowRunId);
    expect(run.info.runName).toBe('resnet50 · lr sweep 2');
    expect(run.data.tags).toMatchObject({ team: 'vision-2', 'mlflow.runName': 'resnet50 · lr sweep 2' });

    // Changed behind the sidecar's back; a re-mirror sets them again from what the job stored.
    await mlflow.setTags(run.info.runId, { 'mlflow.runName': 'renamed by hand', team: 'someone' });
    expect((await mlflow.getRun(run.info.runId)).info.runName).toBe('renamed by hand');
    await rpc.remirrorMlflowRun({ jobId });
    job = await waitInSync(rpc, jobId);
    run = await mlflow.getRun(job.mlflowRunId);
    expect(run.info.runName).toBe('resnet50 · lr sweep 2');
    expect(run.data.tags).toMatchObject({ team: 'vision-2' });
  });

  it('names alike what belongs together, and records every rename and unit change in the run', async () => {
    const detect = uniqueJobId('names');
    await rpc.beginTraining({ jobId: detect, taskType: TaskType.OBJECT_DETECTION, framework: 'ultralytics' });
    for (let e = 0; e < 2; e++) {
      await rpc.endEpoch({
        jobId: detect,
        epoch: e,
        metrics: {
          'lr/pg0': 0.01 - e / 1000,
          'lr/pg1': 0.02,
          'lr/pg2': 0.03,
          'metrics/mAP50(B)': 0.3 + e / 10,
          'train/box_loss': 1.5,
        },
      });
    }
    await rpc.reportBatchMetrics([
      {
        jobId: detect,
        blocks: [
          {
            epoch: 0,
            names: ['lr/pg0', 'lr/pg1', 'loss', 'grad_norm'],
            steps: [0n, 1n],
            values: [1, 2, 3, 4, 5, 6, 7, 8],
          },
        ],
      },
    ]);
    await rpc.endTraining({ jobId: detect, outcome: TrainingOutcome.COMPLETED });
    const classify = uniqueJobId('units');
    await rpc.beginTraining({ jobId: classify, taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'timm' });
    await rpc.endEpoch({ jobId: classify, epoch: 0, metrics: { eval_top1: 88.2728, eval_loss: 0.5 } });
    await waitInSync(rpc, detect);
    await waitInSync(rpc, classify);

    const run = await onlyRunOf(mlflow, detect);
    const keys = run.data.metrics.map((m) => m.key).sort();
    // lr/pg0 is the catalog's learning_rate; pg1 and pg2 follow it instead of staying under lr/.
    expect(keys).toEqual(
      [
        'learning_rate',
        'learning_rate_pg1',
        'learning_rate_pg2',
        'mAP50',
        'train_box_loss',
        'batch/learning_rate',
        'batch/learning_rate_pg1',
        'batch/train_loss',
        'batch/grad_norm',
      ].sort(),
    );
    await expectExactlyOnce(mlflow, run.info.runId, 'learning_rate_pg2', [0, 1], () => 0.03);
    const tags = run.data.tags;
    expect(tags).toMatchObject({
      'training_callbacks.reported_as.learning_rate': 'lr/pg0',
      'training_callbacks.reported_as.learning_rate_pg1': 'lr/pg1',
      'training_callbacks.reported_as.learning_rate_pg2': 'lr/pg2',
      'training_callbacks.reported_as.mAP50': 'metrics/mAP50(B)',
      'training_callbacks.reported_as.train_box_loss': 'train/box_loss',
      'training_callbacks.reported_as.batch/learning_rate': 'lr/pg0',
      'training_callbacks.reported_as.batch/learning_rate_pg1': 'lr/pg1',
      'training_callbacks.reported_as.batch/train_loss': 'loss',
    });
    // `batch/` alone is the documented rule for batch keys: no tag.
    expect(tags['training_callbacks.reported_as.batch/grad_norm']).toBeUndefined();

    const top1 = await onlyRunOf(mlflow, classify);
    expect(top1.data.tags).toMatchObject({
      'training_callbacks.reported_as.accuracy': 'eval_top1',
      'training_callbacks.reported_as.val_loss': 'eval_loss',
      'training_callbacks.unit.accuracy': 'reported in percent (eval_top1), stored as a fraction: ×0.01',
    });
    expect(top1.data.tags['training_callbacks.unit.val_loss']).toBeUndefined();
    const [point] = await mlflow.getMetricHistory(top1.info.runId, 'accuracy');
    expect(point!.value).toBe(0.882728);
  });

  it('keeps system metrics under MLflow’s own system/ names, for its System metrics tab', async () => {
    const jobId = uniqueJobId('system');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    // As the Python client's sampler sends them: one row per sample, step = seconds since the job began.
    await rpc.reportBatchMetrics([
      {
        jobId,
        blocks: [
          { epoch: 0, names: ['loss'], steps: [0n, 1n], values: [0.9, 0.8] },
          {
            epoch: 0,
            names: ['system/gpu_0_utilization_percentage', 'system/cpu_utilization_percentage'],
            steps: [10n, 20n],
            values: [87, 12.5, 91, 13.5],
          },
        ],
      },
    ]);
    await rpc.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED });
    await waitInSync(rpc, jobId);
    const run = await onlyRunOf(mlflow, jobId);
    expect(run.data.metrics.map((m) => m.key).sort()).toEqual(
      ['batch/train_loss', 'system/cpu_utilization_percentage', 'system/gpu_0_utilization_percentage'].sort(),
    );
    await expectExactlyOnce(mlflow, run.info.runId, 'system/gpu_0_utilization_percentage', [10, 20], (s) =>
      s === 10 ? 87 : 91,
    );
    await expectExactlyOnce(mlflow, run.info.runId, 'system/cpu_utilization_percentage', [10, 20], (s) =>
      s === 10 ? 12.5 : 13.5,
    );
    // Kept as reported: no rename to record.
    expect(Object.keys(run.data.tags).filter((t) => t.includes('system/'))).toEqual([]);
  });

  it('lists jobs with their sync status', async () => {
    const jobId = uniqueJobId('listed');
    await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION });
    await waitInSync(rpc, jobId);
    const { jobs } = await rpc.listJobs({ pageSize: 1000 });
    const listed = jobs.find((j) => j.jobId === jobId)!;
    expect(listed.mlflowSync).toMatchObject({ enabled: true, inSync: true, pendingItems: 0n });
    expect(listed.mlflowRunId).not.toBe('');
  });
});

describe('without MLflow configured', () => {
  it('works as before: mirroring disabled, nothing queued', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'tc-no-mlflow-'));
    try {
      await using plain = await startSidecarProcess({
        dataDir,
        args: ['--quiet'],
        env: { MLFLOW_TRACKING_URI: '' },
      });
      expect(plain.output.join('\n')).toContain('MLflow: off');
      const client = createClient(TrainingCallbacks, plain.address);
      await client.beginTraining({ jobId: 'plain', taskType: TaskType.IMAGE_CLASSIFICATION });
      await client.endEpoch({ jobId: 'plain', epoch: 0, metrics: { accuracy: 0.5 } });
      await client.endTraining({ jobId: 'plain', outcome: TrainingOutcome.COMPLETED });
      const job = await getJob(client, 'plain');
      expect(job.mlflowSync).toMatchObject({ enabled: false, inSync: true, pendingItems: 0n });
      expect(job.mlflowRunId).toBe('');
      expect(await queryDatabase(plain.dbPath, 'select * from outbox_item')).toEqual([]);
      client.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
