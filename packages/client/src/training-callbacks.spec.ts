// The client against the real sidecar, started as a child process on a free loopback port.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import path from 'node:path';
import { createClient, RpcError, Status } from '@training-callbacks/grpc-adapter';
import {
  JobStatus,
  MAX_PARAMS,
  MetricTier,
  PARAM_KEY_MAX_LENGTH,
  PARAM_VALUE_MAX_LENGTH,
  TrainingCallbacks as Service,
  TrainingOutcome,
} from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile } from './artifact-files.ts';
import { runTraining } from './run-training.ts';
import { type SidecarProcess, startSidecarProcess } from './testing/sidecar.ts';
import {
  TrainingCallbacks,
  type TrainingCallbacksClient,
  type TrainingCallbacksOptions,
} from './training-callbacks.ts';

let sidecar: SidecarProcess;
let work: string;
let sharedRoot: string;
let reader: TrainingCallbacksClient;
let jobCounter = 0;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'tc-client-'));
  sharedRoot = path.join(work, 'shared');
  await mkdir(sharedRoot);
  sidecar = await startSidecarProcess({ args: ['--artifact-root', sharedRoot, '--quiet'] });
  reader = createClient(Service, sidecar.address);
}, 30_000);

afterAll(async () => {
  reader?.close();
  await sidecar?.[Symbol.asyncDispose]();
  await rm(work, { recursive: true, force: true });
});

async function until(condition: () => boolean, timeoutMs = 30_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

function callbacksFor(options: Partial<TrainingCallbacksOptions> = {}): TrainingCallbacks {
  return new TrainingCallbacks({
    address: sidecar.address,
    jobId: `job-${process.pid}-${++jobCounter}`,
    taskType: 'object_detection',
    framework: 'custom',
    modelName: 'yolo11n',
    deadlineMs: 5000,
    ...options,
  });
}

describe('TrainingCallbacks against the real sidecar', { timeout: 60_000 }, () => {
  it('runs begin → epochs → batches → artifacts → end and reads it all back', async () => {
    await using callbacks = callbacksFor({
      modelConfig: { architecture: 'yolo11n', pretrained: true },
      trainingConfig: { epochs: 3, batch: 16 },
      params: { lr: 0.001, amp: true, optimizer: 'sgd' },
      customMetrics: [{ name: 'gpu_mem', label: 'GPU memory', format: 'float', higherIsBetter: false }],
    });
    const begun = await callbacks.onTrainBegin();
    expect(begun.resumed).toBe(false);
    expect(begun.job?.status).toBe(JobStatus.RUNNING);
    expect(begun.job?.params).toEqual({ lr: '0.001', amp: 'true', optimizer: 'sgd' });
    expect(begun.catalog?.primaryMetric).toBe('mAP50');

    const maps = [0.3, 0.5, 0.4];
    let step = 0;
    for (let epoch = 0; epoch < 3; epoch++) {
      await callbacks.onEpochBegin(epoch);
      for (let i = 0; i < 300; i++, step++) callbacks.onBatchEnd(step, { loss: 1 / (step + 1), lr: 1e-3 });
      const result = await callbacks.onEpochEnd(epoch, {
        mAP50: maps[epoch]!,
        train_loss: 1 / (epoch + 1),
        gpu_mem: 3.5,
      });
      expect(result.isBest).toBe(epoch !== 2);
      expect(result.best?.epoch).toBe(epoch === 2 ? 1 : epoch);
      expect(result.verdicts.find((v) => v.reportedName === 'mAP50')?.tier).toBe(MetricTier.PRIMARY);
      expect(result.verdicts.find((v) => v.reportedName === 'gpu_mem')?.tier).toBe(MetricTier.CUSTOM);
      expect(result.summary).not.toBe('');
      // onEpochEnd flushed this epoch's batch points before reporting it.
      expect(callbacks.stats().pointsAccepted).toBe(600 * (epoch + 1));
    }

    const checkpoint = path.join(sharedRoot, `${callbacks.jobId}-best.pt`);
    await writeFile(checkpoint, 'weights');
    const [logged] = await callbacks.logArtifact(checkpoint, 'checkpoints');
    expect(logged?.artifactPath).toBe(`checkpoints/${callbacks.jobId}-best.pt`);
    expect(logged?.sourcePath).not.toBe('');
    const plots = path.join(sharedRoot, `${callbacks.jobId}-plots`);
    await mkdir(path.join(plots, 'val'), { recursive: true });
    await writeFile(path.join(plots, 'loss.png'), 'png');
    await writeFile(path.join(plots, 'val', 'pr.png'), 'png2');
    const dir = await callbacks.logArtifacts(plots, 'plots');
    expect(dir.map((a) => a.artifactPath).sort()).toEqual(['plots/loss.png', 'plots/val/pr.png']);

    const ended = await callbacks.onTrainEnd({ mAP50: 0.5 });
    expect(ended.job?.status).toBe(JobStatus.COMPLETED);
    expect(callbacks.state).toBe('ended');

    const stats = callbacks.stats();
    expect(stats).toMatchObject({
      pointsBuffered: 1800,
      pointsAccepted: 1800,
      pointsDropped: 0,
      pointsFailed: 0,
    });
    expect(stats.pointsPending + stats.pointsInFlight).toBe(0);

    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.bestEpoch).toBe(1);
    expect(job?.epochsReported).toBe(3);
    expect(job?.finalMetrics.mAP50).toBe(0.5);
    const { epochs } = await reader.listEpochs({ jobId: callbacks.jobId });
    expect(epochs.map((e) => e.metrics.mAP50)).toEqual(maps);
    const { blocks } = await reader.listBatchMetrics({ jobId: callbacks.jobId });
    const steps = blocks.flatMap((b) => b.steps.map(Number));
    expect(steps).toEqual(Array.from({ length: 900 }, (_, i) => i));
    const first = blocks[0]!;
    // Names come back canonical: "loss" → "train_loss", "lr" → "learning_rate".
    expect([...first.names].sort()).toEqual(['learning_rate', 'train_loss']);
    expect(first.values[first.names.indexOf('train_loss')]).toBe(1);
    const byEpoch = await reader.listBatchMetrics({ jobId: callbacks.jobId, epoch: 1 });
    expect(byEpoch.blocks.flatMap((b) => b.steps.map(Number))[0]).toBe(300);
    const { artifacts } = await reader.listArtifacts({ jobId: callbacks.jobId });
    expect(artifacts).toHaveLength(3);

    // Batch points after the end are dropped and counted, not sent.
    callbacks.onBatchEnd(10_000, { loss: 1 });
    expect(callbacks.stats().pointsDropped).toBe(1);
    await callbacks.flush(); // nothing left to send: resolves at once
  });

  it('resumes a job begun again under the same id', async () => {
    const first = callbacksFor({ jobId: `resume-${process.pid}` });
    await first.onTrainBegin();
    await first.onEpochEnd(0, { mAP50: 0.2 });
    first.close();
    await using again = callbacksFor({ jobId: `resume-${process.pid}`, startEpoch: 1 });
    const begun = await again.onTrainBegin();
    expect(begun.resumed).toBe(true);
    expect(begun.job?.startEpoch).toBe(1);
    expect(begun.job?.epochsReported).toBe(1);
  });

  it('sends the MLflow run name and extra tags with BeginTraining; a resume replaces them', async () => {
    const jobId = `named-${process.pid}`;
    const first = callbacksFor({
      jobId,
      runName: 'sweep 1 · yolo',
      tags: { team: 'vision', 'sweep/id': 's1' },
    });
    await first.onTrainBegin();
    first.close();
    let { job } = await reader.getJob({ jobId });
    expect(job).toMatchObject({ runName: 'sweep 1 · yolo', tags: { team: 'vision', 'sweep/id': 's1' } });
    await using again = callbacksFor({ jobId, runName: 'sweep 2', tags: { team: 'vision-2' } });
    await again.onTrainBegin();
    ({ job } = await reader.getJob({ jobId }));
    expect(job?.runName).toBe('sweep 2');
    expect(job?.tags).toEqual({ team: 'vision-2' });
  });

  it('keeps params within the sidecar limits (proto/request-limits.json): the job begins, a warning names each change', async () => {
    // Past any one limit the sidecar refuses the whole BeginTraining (INVALID_ARGUMENT).
    const warnings: string[] = [];
    const longStart = '🙂'.repeat(PARAM_KEY_MAX_LENGTH); // counted in code points, not UTF-16 units
    await using callbacks = callbacksFor({
      strict: true,
      onWarning: (w) => warnings.push(w),
      params: {
        prompt: 'p'.repeat(PARAM_VALUE_MAX_LENGTH + 1000),
        [`${longStart}-first`]: 1,
        [`${longStart}-second`]: 2,
        'bad\nkey': 3,
        '': 4,
        lr: 0.1,
      },
    });
    const begun = await callbacks.onTrainBegin();
    expect(begun.delivered).toBe(true);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.RUNNING);
    const params = job?.params ?? {};
    expect(params.lr).toBe('0.1');
    expect(Array.from(params.prompt ?? '')).toHaveLength(PARAM_VALUE_MAX_LENGTH);
    expect(params.prompt).toMatch(/… \(cut from 7000 characters\)$/);
    const long = Object.keys(params).filter((k) => k.startsWith('🙂'));
    expect(long).toHaveLength(2); // shortened apart: start, '_', 8 hex digits of the key's hash
    for (const key of long) {
      expect(Array.from(key)).toHaveLength(PARAM_KEY_MAX_LENGTH);
      expect(key.startsWith(`${'🙂'.repeat(PARAM_KEY_MAX_LENGTH - 9)}_`)).toBe(true);
      expect(key).toMatch(/_[0-9a-f]{8}$/);
    }
    expect(Object.keys(params).sort()).toEqual([...long, 'lr', 'prompt'].sort());
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain('5 params are beyond what the sidecar');
    expect(warnings[0]).toContain('"bad\\nkey" dropped');
    expect(warnings[0]).toContain(`shortened to ${PARAM_KEY_MAX_LENGTH} characters`);
    expect(warnings[0]).toContain('the value of "prompt" cut');
    expect((await callbacks.onTrainEnd()).job?.status).toBe(JobStatus.COMPLETED);
  });

  it('keeps at most MAX_PARAMS params, dropping the rest with a warning', async () => {
    const warnings: string[] = [];
    const many = Object.fromEntries(Array.from({ length: MAX_PARAMS + 5 }, (_, i) => [`p${i}`, i]));
    await using callbacks = callbacksFor({ strict: true, onWarning: (w) => warnings.push(w), params: many });
    expect((await callbacks.onTrainBegin()).delivered).toBe(true);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(Object.keys(job?.params ?? {})).toHaveLength(MAX_PARAMS);
    expect(job?.params[`p${MAX_PARAMS - 1}`]).toBe(String(MAX_PARAMS - 1));
    expect(warnings.join('\n')).toContain(
      `5 params beyond the first ${MAX_PARAMS} dropped, from "p${MAX_PARAMS}" on`,
    );
  });

  it('uploads in ≤ 1 MiB chunks when the path is outside the sidecar artifact roots', async () => {
    await using callbacks = callbacksFor();
    await callbacks.onTrainBegin();
    const outside = path.join(work, 'private');
    await mkdir(path.join(outside, 'sub'), { recursive: true });
    const big = path.join(outside, 'last.pt');
    const content = Buffer.alloc(2.5 * 1024 * 1024);
    for (let i = 0; i < content.length; i++) content[i] = (i * 31) & 0xff;
    await writeFile(big, content);
    const [artifact] = await callbacks.logArtifact(big, 'checkpoints');
    expect(artifact?.artifactPath).toBe('checkpoints/last.pt');
    expect(artifact?.sizeBytes).toBe(BigInt(content.length));
    expect(artifact?.sha256).toBe((await hashFile(big)).sha256);
    expect(artifact?.sourcePath).toBe(''); // uploaded, not read by path

    await writeFile(path.join(outside, 'sub', 'a.txt'), 'a');
    await writeFile(path.join(outside, 'b.txt'), 'b');
    await rm(big);
    const uploaded = await callbacks.logArtifacts(outside, 'run');
    expect(uploaded.map((a) => a.artifactPath)).toEqual(['run/b.txt', 'run/sub/a.txt']);
    const { artifacts } = await reader.listArtifacts({ jobId: callbacks.jobId });
    expect(artifacts.map((a) => a.artifactPath)).toEqual([
      'checkpoints/last.pt',
      'run/b.txt',
      'run/sub/a.txt',
    ]);
  });

  it('uploads always with artifactTransfer "upload", and never with "path"', async () => {
    await using up = callbacksFor({ artifactTransfer: 'upload' });
    await up.onTrainBegin();
    const file = path.join(sharedRoot, `${up.jobId}.txt`);
    await writeFile(file, 'x');
    expect((await up.logArtifact(file))[0]?.sourcePath).toBe('');
    await using byPath = callbacksFor({ artifactTransfer: 'path', strict: true });
    await byPath.onTrainBegin();
    const outside = path.join(work, `${byPath.jobId}.txt`);
    await writeFile(outside, 'y');
    const error = await byPath.logArtifact(outside).catch((e: unknown) => e);
    expect((error as RpcError).code).toBe(Status.PERMISSION_DENIED);
    expect((error as RpcError).message).toContain('artifact roots');
  });

  it('strict: rejects at once, without retrying, with the sidecar message for INVALID_ARGUMENT and NOT_FOUND', async () => {
    await using never = callbacksFor({ strict: true });
    const notFound = await never.onEpochEnd(0, { mAP50: 0.1 }).catch((e: unknown) => e);
    expect(notFound).toBeInstanceOf(RpcError);
    expect((notFound as RpcError).code).toBe(Status.NOT_FOUND);
    await using callbacks = callbacksFor({ strict: true });
    await callbacks.onTrainBegin();
    const invalid = await callbacks.onEpochEnd(-1, { mAP50: 0.1 }).catch((e: unknown) => e);
    expect((invalid as RpcError).code).toBe(Status.INVALID_ARGUMENT);
    expect((invalid as RpcError).message).toMatch(/epoch/);
    expect(callbacks.stats().retries + never.stats().retries).toBe(0);
  });

  it('drops a refused report with a warning naming it, goes on with the later ones, and ends the job with the loss', async () => {
    const warnings: string[] = [];
    await using callbacks = callbacksFor({ onWarning: (w) => warnings.push(w) });
    // Nothing awaited: the reports keep their order in the queue.
    void callbacks.onTrainBegin();
    void callbacks.onEpochBegin(0);
    const refused = callbacks.onEpochEnd(-1, { mAP50: 0.1 });
    const accepted = callbacks.onEpochEnd(0, { mAP50: 0.4 });
    const bad = await refused;
    expect(bad).toMatchObject({ delivered: false, pending: false, isBest: false });
    expect(bad.error?.code).toBe(Status.INVALID_ARGUMENT);
    expect((await accepted).isBest).toBe(true);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/EndEpoch -1 lost \(INVALID_ARGUMENT: .*epoch/);
    const ended = await callbacks.onTrainEnd({ mAP50: 0.4 });
    expect(ended).toMatchObject({ delivered: true, reportsDelivered: 4 });
    expect(ended.losses.failedWrites).toBe(1);
    expect(ended.losses.reasons.join('\n')).toMatch(/EndEpoch -1 lost \(INVALID_ARGUMENT/);
    expect(ended.lossSummary).toMatch(/^1 write failed/);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.COMPLETED);
    expect(job?.epochsReported).toBe(1);
    expect(job?.clientLosses?.failedWrites).toBe(1n);
  });

  it('begins the job again once when a restarted sidecar no longer knows it (NOT_FOUND), then delivers the report', async () => {
    const first = await startSidecarProcess({ args: ['--quiet'] });
    const warnings: string[] = [];
    await using callbacks = new TrainingCallbacks({
      address: first.address,
      jobId: `lost-db-${process.pid}`,
      taskType: 'image_classification',
      answerWaitMs: 60_000,
      onWarning: (w) => warnings.push(w),
    });
    expect((await callbacks.onTrainBegin()).delivered).toBe(true);
    await first[Symbol.asyncDispose](); // gone with its database
    await using second = await startSidecarProcess({ args: ['--quiet'], listen: first.address });
    for (let step = 0; step < 10; step++) callbacks.onBatchEnd(step, { loss: 1 });
    expect((await callbacks.flush()).pointsDelivered).toBe(10); // the batch stream begins it again
    const epoch = await callbacks.onEpochEnd(0, { accuracy: 0.5 });
    expect(epoch).toMatchObject({ delivered: true, isBest: true });
    expect(warnings.join('\n')).toMatch(/does not know the job any more; beginning it again/);
    const peer = createClient(Service, second.address);
    try {
      const { job } = await peer.getJob({ jobId: callbacks.jobId });
      expect(job).toMatchObject({ status: JobStatus.RUNNING, epochsReported: 1 });
    } finally {
      peer.close();
    }
    expect(callbacks.losses().failedWrites).toBe(0);
  }, 120_000);

  it('a report of a job never begun is lost, counted, and does not reject', async () => {
    await using never = callbacksFor({ onWarning: () => {} });
    const result = await never.onEpochEnd(0, { mAP50: 0.1 });
    expect(result.error?.code).toBe(Status.NOT_FOUND);
    expect(never.losses().failedWrites).toBe(1);
  });

  it('counts points the sidecar refuses inside an acknowledged stream and keeps the rest', async () => {
    await using callbacks = callbacksFor();
    await callbacks.onTrainBegin();
    for (let step = 0; step < 10; step++) callbacks.onBatchEnd(step, { loss: step });
    callbacks.onBatchEnd(10, { 'bad\u0001name': 1, loss: 1 });
    for (let step = 11; step < 20; step++) callbacks.onBatchEnd(step, { loss: step });
    await callbacks.flush();
    const stats = callbacks.stats();
    expect(stats.pointsAccepted).toBe(19);
    expect(stats.pointsRejected).toBe(2);
    expect(stats.lastRejections.join('\n')).toMatch(/metric name/);
  });

  it('refuses an unknown task type before any call', () => {
    expect(() => callbacksFor({ taskType: 'detection' as never })).toThrow(/object_detection/);
  });
});

describe('the trainer process and heartbeats', () => {
  it('sends who the trainer is with BeginTraining and heartbeats from a timer until the job ends', async () => {
    // A 1 s lease: the sidecar asks for a heartbeat every 1/6 s.
    await using leased = await startSidecarProcess({ args: ['--quiet', '--trainer-lease', '1'] });
    const warnings: string[] = [];
    await using callbacks = new TrainingCallbacks({
      address: leased.address,
      jobId: `beat-${process.pid}`,
      taskType: 'image_classification',
      onWarning: (w) => warnings.push(w),
    });
    // The sidecar validates the trainer process (a bad one is INVALID_ARGUMENT): it was accepted.
    expect((await callbacks.onTrainBegin()).delivered).toBe(true);
    const peer = createClient(Service, leased.address);
    try {
      const { job } = await peer.getJob({ jobId: callbacks.jobId });
      const stat = await readFile(`/proc/${process.pid}/stat`, 'utf8');
      expect(job?.trainer).toMatchObject({
        pid: process.pid,
        startTimeTicks: BigInt(
          stat
            .slice(stat.lastIndexOf(')') + 1)
            .trim()
            .split(/\s+/)[19]!,
        ),
        hostname: hostname(),
        bootId: (await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim(),
        sessionId: callbacks.sessionId,
      });
      await until(() => callbacks.stats().heartbeatsSent >= 3);
      // Another client ends the job: the next heartbeat hears it, and they stop.
      await peer.endTraining({ jobId: callbacks.jobId, outcome: TrainingOutcome.CANCELLED });
      await until(() => warnings.some((w) => /job is CANCELLED; heartbeats stop/.test(w)));
      const sent = callbacks.stats().heartbeatsSent;
      await new Promise((r) => setTimeout(r, 1000)); // six intervals
      expect(callbacks.stats().heartbeatsSent).toBe(sent);
    } finally {
      peer.close();
    }
  }, 60_000);
});

describe('runTraining against the real sidecar', () => {
  it('ends the job completed with final metrics when training returns', async () => {
    await using callbacks = callbacksFor();
    const result = await runTraining(
      callbacks,
      async (cb) => {
        await cb.onEpochEnd(0, { mAP50: 0.7 });
        return { mAP50: 0.7 };
      },
      { finalMetrics: (r) => r },
    );
    expect(result).toEqual({ mAP50: 0.7 });
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.COMPLETED);
    expect(job?.finalMetrics.mAP50).toBe(0.7);
  });

  it('marks a thrown error as failed with its message and rethrows it', async () => {
    await using callbacks = callbacksFor();
    const boom = new Error('CUDA out of memory');
    const thrown = await runTraining(callbacks, async (cb) => {
      await cb.onEpochBegin(0);
      cb.onBatchEnd(0, { loss: 2 });
      throw boom;
    }).catch((e: unknown) => e);
    expect(thrown).toBe(boom);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.FAILED);
    expect(job?.errorMessage).toBe('CUDA out of memory');
    // Pending batch points were flushed before the job ended.
    const { blocks } = await reader.listBatchMetrics({ jobId: callbacks.jobId });
    expect(blocks.flatMap((b) => b.values)).toEqual([2]);
  });

  it('ends the job cancelled when the signal aborts', async () => {
    await using callbacks = callbacksFor();
    const controller = new AbortController();
    await runTraining(
      callbacks,
      async (_cb, signal) => {
        controller.abort(new Error('stopped by the scheduler'));
        expect(signal.aborted).toBe(true);
      },
      { signal: controller.signal },
    );
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.CANCELLED);
    expect(job?.errorMessage).toBe('stopped by the scheduler');
  });

  it('does not end twice when training ended the job itself', async () => {
    await using callbacks = callbacksFor();
    await runTraining(callbacks, async (cb) => {
      await cb.onTrainEnd({}, { outcome: 'cancelled', error: 'early stop' });
    });
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.status).toBe(JobStatus.CANCELLED);
  });
});

describe('addresses', () => {
  it('works over a unix socket', async () => {
    const socket = path.join(work, 'sidecar.sock');
    await using unixSidecar = await startSidecarProcess({ listen: `unix:${socket}`, args: ['--quiet'] });
    await using callbacks = new TrainingCallbacks({
      address: unixSidecar.address,
      jobId: 'over-unix',
      taskType: 'image_classification',
    });
    expect(callbacks.address).toBe(`unix:${socket}`);
    const begun = await callbacks.onTrainBegin();
    expect(begun.catalog?.primaryMetric).toBe('accuracy');
  }, 30_000);

  it('defaults to TRAINING_CALLBACKS_ADDRESS, then 127.0.0.1:50051', () => {
    const saved = process.env.TRAINING_CALLBACKS_ADDRESS;
    try {
      process.env.TRAINING_CALLBACKS_ADDRESS = 'unix:/tmp/from-env.sock';
      const fromEnv = new TrainingCallbacks({ jobId: 'a', taskType: 'pose_estimation' });
      expect(fromEnv.address).toBe('unix:/tmp/from-env.sock');
      fromEnv.close();
      delete process.env.TRAINING_CALLBACKS_ADDRESS;
      const fallback = new TrainingCallbacks({ jobId: 'a', taskType: 'pose_estimation' });
      expect(fallback.address).toBe('127.0.0.1:50051');
      fallback.close();
    } finally {
      if (saved === undefined) delete process.env.TRAINING_CALLBACKS_ADDRESS;
      else process.env.TRAINING_CALLBACKS_ADDRESS = saved;
    }
  });
});
