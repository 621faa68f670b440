// Whole jobs end to end: the real sidecar process, driven through the TypeScript client SDK, read back
// through the read RPCs and straight from the database (SQLite, or PostgreSQL in the PostgreSQL run). A classification job reports the way timm
// does (top-1 in percent) and a detection job the way Ultralytics does (its own metric names).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runTraining, TrainingCallbacks } from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import {
  JobStatus,
  MetricTier,
  TrainingCallbacks as Service,
  TaskType,
  TrainingOutcome,
} from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryDatabase } from './database.ts';

type Methods = typeof Service extends { method: infer M } ? M : never;

let sidecar: SidecarProcess;
let reader: ReturnType<typeof createClient<Methods>>;
let shared: string;

beforeAll(async () => {
  shared = await mkdtemp(path.join(tmpdir(), 'tc-shared-'));
  sidecar = await startSidecarProcess({ args: ['--artifact-root', shared] });
  reader = createClient(Service, sidecar.address);
});

afterAll(async () => {
  reader?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

/** Runs `f` once, for whichever test calls it first; later calls get the same result. */
function once<T>(f: () => Promise<T>): () => Promise<T> {
  let result: Promise<T> | undefined;
  return () => (result ??= f());
}

const EPOCHS = 6;
const STEPS_PER_EPOCH = 50;

interface SentEpoch {
  epoch: number;
  metrics: Record<string, number>;
}

describe('a classification job reported like timm', () => {
  const jobId = 'cls-resnet18';
  const sent: SentEpoch[] = [];
  const top1 = [41.5, 63.25, 78.0, 91.2, 88.75, 91.2]; // percent, as timm's eval_top1; epoch 3 is best (tie at 5 goes to 3)

  // The flow runs once, for whichever test needs it first: no test depends on another's order.
  const flow = once(async () => {
    const checkpoint = path.join(shared, 'cls', 'model_best.pth.tar');
    await mkdir(path.dirname(checkpoint), { recursive: true });
    await writeFile(checkpoint, Buffer.from('resnet18 weights '.repeat(1000)));

    const callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId,
      taskType: 'image_classification',
      framework: 'timm',
      modelName: 'resnet18',
      modelConfig: { architecture: 'resnet18', pretrained: false, num_classes: 10 },
      trainingConfig: { epochs: EPOCHS, batch_size: 64, optimizer: 'adamw' },
      params: { lr: 0.001, weight_decay: 0.05, amp: true },
      customMetrics: [{ name: 'throughput', label: 'Images/s', format: 'int', higherIsBetter: true }],
    });
    const begin = await callbacks.onTrainBegin();
    expect(begin.resumed).toBe(false);
    expect(begin.catalog?.primaryMetric).toBe('accuracy');

    for (let epoch = 0; epoch < EPOCHS; epoch++) {
      await callbacks.onEpochBegin(epoch);
      for (let s = 0; s < STEPS_PER_EPOCH; s++) {
        callbacks.onBatchEnd(
          epoch * STEPS_PER_EPOCH + s,
          { loss: 2 / (epoch + 1) + s / 1000, lr: 0.001 },
          { epoch },
        );
      }
      const metrics = {
        eval_top1: top1[epoch]!,
        eval_top5: 99,
        train_loss: 2 / (epoch + 1),
        eval_loss: 2.2 / (epoch + 1),
        lr: 0.001 * 0.9 ** epoch,
        throughput: 1200 + epoch,
        grad_norm: epoch === 2 ? Number.NaN : 0.5,
      };
      sent.push({ epoch, metrics });
      const result = await callbacks.onEpochEnd(epoch, metrics);
      const byName = Object.fromEntries(result.verdicts.map((v) => [v.reportedName, v]));
      expect(byName.eval_top1).toMatchObject({
        name: 'accuracy',
        tier: MetricTier.PRIMARY,
        value: top1[epoch]! / 100,
      });
      expect(byName.eval_loss).toMatchObject({ name: 'val_loss', tier: MetricTier.STANDARD });
      expect(byName.throughput).toMatchObject({ name: 'throughput', tier: MetricTier.CUSTOM });
      expect(result.isBest).toBe(epoch <= 1 ? true : epoch === 2 || epoch === 3);
      expect(result.summary).toContain(`epoch ${epoch}`);
      expect(result.summary).toContain(`Accuracy ${top1[epoch]!.toFixed(2)}%`);
    }
    const artifacts = await callbacks.logArtifact(checkpoint, 'checkpoints');
    expect(artifacts).toHaveLength(1);
    await callbacks.onTrainEnd({ eval_top1: 91.2 });
    expect(callbacks.stats()).toMatchObject({
      pointsDropped: 0,
      pointsFailed: 0,
      pointsAccepted: EPOCHS * STEPS_PER_EPOCH * 2,
    });
    callbacks.close();
  });
  it('runs the whole flow through the client', () => flow());

  it('reads back exactly what was sent through the read RPCs', async () => {
    await flow();
    const { job } = await reader.getJob({ jobId });
    expect(job).toMatchObject({
      jobId,
      framework: 'timm',
      modelName: 'resnet18',
      status: JobStatus.COMPLETED,
      epochsReported: EPOCHS,
      primaryMetric: 'accuracy',
      bestEpoch: 3,
      bestValue: 0.912,
      finalPrimaryValue: 0.912,
      params: { lr: '0.001', weight_decay: '0.05', amp: 'true' },
    });
    expect(job?.modelConfig).toEqual({ architecture: 'resnet18', pretrained: false, num_classes: 10 });
    expect(job?.customMetrics[0]).toMatchObject({ name: 'throughput', label: 'Images/s' });

    const { epochs } = await reader.listEpochs({ jobId });
    expect(epochs.map((e) => e.epoch)).toEqual([0, 1, 2, 3, 4, 5]);
    for (const { epoch, metrics } of sent) {
      const stored = epochs[epoch]!.metrics;
      expect(stored.accuracy).toBe(metrics.eval_top1! / 100);
      expect(stored.top5_accuracy).toBe(0.99);
      expect(stored.train_loss).toBe(metrics.train_loss);
      expect(stored.val_loss).toBe(metrics.eval_loss);
      expect(stored.learning_rate).toBe(metrics.lr);
      expect(stored.throughput).toBe(metrics.throughput);
      if (epoch === 2) {
        expect(stored.grad_norm).toBeNaN();
        expect(epochs[epoch]!.nonFiniteMetrics).toEqual(['grad_norm']);
      } else expect(stored.grad_norm).toBe(0.5);
    }

    const best = await reader.getBestEpoch({ jobId });
    expect(best.primaryMetric).toBe('accuracy');
    expect(best.epoch?.epoch).toBe(3);

    const { blocks } = await reader.listBatchMetrics({ jobId });
    const points = new Map<string, number>();
    for (const block of blocks) {
      block.steps.forEach((step, row) => {
        block.names.forEach((name, col) => {
          points.set(`${step}/${name}`, block.values[row * block.names.length + col]!);
        });
      });
    }
    expect(points.size).toBe(EPOCHS * STEPS_PER_EPOCH * 2);
    // Batch names are normalised like epoch names: loss → train_loss, lr → learning_rate.
    expect(points.get('120/loss')).toBeUndefined();
    expect(points.get('120/train_loss')).toBe(2 / 3 + 20 / 1000);
    expect(points.get(`${2 * STEPS_PER_EPOCH + 7}/learning_rate`)).toBe(0.001);
    expect(blocks.every((b) => b.names.includes('learning_rate'))).toBe(true);

    const { artifacts } = await reader.listArtifacts({ jobId });
    const original = await readFile(path.join(shared, 'cls', 'model_best.pth.tar'));
    expect(artifacts).toHaveLength(1);
    expect(artifacts[0]).toMatchObject({
      artifactPath: 'checkpoints/model_best.pth.tar',
      sizeBytes: BigInt(original.length),
      sha256: createHash('sha256').update(original).digest('hex'),
    });
  });

  it('holds the same in the database', async () => {
    await flow();
    const [job] = await queryDatabase<Record<string, unknown>>(
      sidecar.dbPath,
      'select * from training_job where job_id = ?',
      jobId,
    );
    expect(job).toMatchObject({
      status: 'completed',
      best_epoch: 3,
      final_accuracy: 0.912,
      epochs_reported: EPOCHS,
    });
    const rows = await queryDatabase<{
      epoch: number;
      loss: number | null;
      accuracy: number | null;
      learning_rate: number | null;
      extra_metrics: string;
    }>(
      sidecar.dbPath,
      'select epoch, loss, accuracy, learning_rate, extra_metrics from training_metric where job_id = ? order by epoch',
      jobId,
    );
    expect(rows).toHaveLength(EPOCHS);
    for (const row of rows) {
      const sentEpoch = sent[row.epoch]!.metrics;
      expect(row.accuracy).toBe(sentEpoch.eval_top1! / 100);
      expect(row.loss).toBe(sentEpoch.train_loss);
      expect(row.learning_rate).toBe(sentEpoch.lr);
      const extra = JSON.parse(row.extra_metrics) as Record<string, unknown>;
      expect(extra.throughput).toBe(sentEpoch.throughput);
      expect(extra.grad_norm).toBe(row.epoch === 2 ? 'NaN' : 0.5);
    }
    const blocks = await queryDatabase<{ names: string; steps: Buffer }>(
      sidecar.dbPath,
      'select names, steps from batch_metric_block where job_id = ?',
      jobId,
    );
    const points = blocks.reduce(
      (n, b) => n + (b.steps.length / 8) * (JSON.parse(b.names) as string[]).length,
      0,
    );
    expect(points).toBe(EPOCHS * STEPS_PER_EPOCH * 2);
  });

  it('prints one readable line per epoch', async () => {
    await flow();
    const lines = sidecar.output.filter((l) => l.startsWith('[cls-resnet18] epoch'));
    expect(lines).toHaveLength(EPOCHS);
    expect(lines[3]).toMatch(
      /^\[cls-resnet18\] epoch 3 │ Accuracy 91\.20% │ .*Train loss 0\.5000.*│ \+\d custom/,
    );
  });
});

describe('a detection job reported like Ultralytics', () => {
  const jobId = 'det-yolo11n';
  const map50 = [0.12, 0.31, 0.45, 0.52, 0.5];

  it('runs the flow, uploads an artifact from outside the shared volume, and reads it back', async () => {
    const elsewhere = await mkdtemp(path.join(tmpdir(), 'tc-private-'));
    const weights = path.join(elsewhere, 'last.pt');
    await writeFile(weights, Buffer.alloc(3 * 1024 * 1024 + 17, 7)); // > one upload chunk
    const callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId,
      taskType: 'object_detection',
      framework: 'ultralytics',
      modelName: 'yolo11n',
    });
    await runTraining(callbacks, async (cb) => {
      for (let epoch = 0; epoch < map50.length; epoch++) {
        await cb.onEpochBegin(epoch);
        for (let s = 0; s < STEPS_PER_EPOCH; s++) {
          cb.onBatchEnd(
            epoch * STEPS_PER_EPOCH + s,
            { 'train/box_loss': 1.5 - epoch / 10, 'train/cls_loss': 2.1 },
            { epoch },
          );
        }
        const result = await cb.onEpochEnd(epoch, {
          'metrics/mAP50(B)': map50[epoch]!,
          'metrics/mAP50-95(B)': map50[epoch]! / 2,
          'metrics/precision(B)': 0.6,
          'metrics/recall(B)': 0.55,
          'train/box_loss': 1.5 - epoch / 10,
          'val/cls_loss': 1.9,
          'lr/pg0': 0.01,
          'lr/pg1': 0.01,
        });
        expect(result.verdicts.find((v) => v.reportedName === 'metrics/mAP50(B)')).toMatchObject({
          name: 'mAP50',
          tier: MetricTier.PRIMARY,
        });
        expect(result.verdicts.find((v) => v.reportedName === 'lr/pg1')?.tier).toBe(MetricTier.CUSTOM);
      }
      const [uploaded] = await cb.logArtifact(weights, 'weights');
      expect(uploaded?.sourcePath).toBe(''); // outside the artifact roots: streamed, not read by path
    });

    const { job } = await reader.getJob({ jobId });
    expect(job).toMatchObject({
      status: JobStatus.COMPLETED,
      bestEpoch: 3,
      bestValue: 0.52,
      finalPrimaryValue: 0.52,
      epochsReported: 5,
    });
    const { epochs } = await reader.listEpochs({ jobId });
    expect(Object.keys(epochs[0]!.metrics).sort()).toEqual(
      [
        'learning_rate',
        'lr/pg1',
        'mAP50',
        'mAP50-95',
        'precision',
        'recall',
        'train_box_loss',
        'val_cls_loss',
      ].sort(),
    );
    expect(epochs.map((e) => e.metrics.mAP50)).toEqual(map50);
    const { blocks } = await reader.listBatchMetrics({ jobId, epoch: 4 });
    expect(blocks.flatMap((b) => b.names)).toContain('train_box_loss');
    expect(blocks.reduce((n, b) => n + b.steps.length, 0)).toBe(STEPS_PER_EPOCH);
    const { artifacts } = await reader.listArtifacts({ jobId });
    const stored = await readFile(path.join(sidecar.dataDir, 'artifacts', jobId, 'weights', 'last.pt'));
    expect(stored.equals(await readFile(weights))).toBe(true);
    expect(artifacts[0]?.artifactPath).toBe('weights/last.pt');
  });

  /** A training function that throws, once; the job as it was read right after. */
  const failure = once(async () => {
    const callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: 'det-oom',
      taskType: 'object_detection',
    });
    const error = await runTraining(callbacks, async (cb) => {
      await cb.onEpochEnd(0, { 'metrics/mAP50(B)': 0.1 });
      throw new Error('CUDA out of memory');
    }).catch((e: unknown) => e);
    return { error, job: (await reader.getJob({ jobId: 'det-oom' })).job };
  });

  it('records a failure when the training function throws', async () => {
    const { error, job } = await failure();
    expect((error as Error).message).toBe('CUDA out of memory');
    expect(job).toMatchObject({
      status: JobStatus.FAILED,
      errorMessage: 'CUDA out of memory',
      epochsReported: 1,
    });
  });

  it('resumes a failed job under the same id instead of creating a second one', async () => {
    await failure();
    const callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: 'det-oom',
      taskType: 'object_detection',
      startEpoch: 1,
    });
    const begin = await callbacks.onTrainBegin();
    expect(begin.resumed).toBe(true);
    await callbacks.onEpochEnd(1, { 'metrics/mAP50(B)': 0.2 });
    await callbacks.onTrainEnd();
    callbacks.close();
    const { jobs } = await reader.listJobs({});
    expect(jobs.filter((j) => j.jobId === 'det-oom')).toHaveLength(1);
    const { job } = await reader.getJob({ jobId: 'det-oom' });
    expect(job).toMatchObject({
      status: JobStatus.COMPLETED,
      bestEpoch: 1,
      startEpoch: 1,
      epochsReported: 2,
    });
  });
});

it('lists jobs by status and task, paged', async () => {
  // Jobs of its own, of a task type no other test uses, so that the answer does not depend on
  // which other tests ran before.
  const pose = ['pose-a', 'pose-b', 'pose-c'];
  for (const jobId of pose) await reader.beginTraining({ jobId, taskType: TaskType.POSE_ESTIMATION });
  await reader.endTraining({ jobId: 'pose-c', outcome: TrainingOutcome.CANCELLED });
  const first = await reader.listJobs({ pageSize: 2 });
  expect(first.jobs).toHaveLength(2);
  const second = await reader.listJobs({ pageSize: 2, pageToken: first.nextPageToken });
  const all = [...first.jobs, ...second.jobs].map((j) => j.jobId);
  expect(new Set(all).size).toBe(all.length);
  const byTask = await reader.listJobs({ taskType: TaskType.POSE_ESTIMATION });
  expect(byTask.jobs.map((j) => j.jobId).sort()).toEqual(pose);
  const byStatus = await reader.listJobs({ taskType: TaskType.POSE_ESTIMATION, status: JobStatus.CANCELLED });
  expect(byStatus.jobs.map((j) => j.jobId)).toEqual(['pose-c']);
});
