// The README's training-loop example, run as written against the real sidecar.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { JobStatus } from '@training-callbacks/proto';
import { expect, it } from 'vitest';
import { runTraining, TrainingCallbacks } from './index.ts';
import { startSidecarProcess } from './testing/sidecar.ts';

it('runs the README example', async () => {
  const shared = await mkdtemp(path.join(tmpdir(), 'tc-readme-'));
  await using sidecar = await startSidecarProcess({ args: ['--quiet', '--artifact-root', shared] });
  await writeFile(path.join(shared, 'best.pt'), 'weights');
  const trainStep = async () => Math.random();
  const validate = async () => 0.5 + Math.random() / 2;
  process.env.TRAINING_CALLBACKS_ADDRESS = sidecar.address;
  const lines: string[] = [];
  const console = { log: (line: string) => lines.push(line) };
  try {
    // ---- README example (paths adapted) ----
    await using callbacks = new TrainingCallbacks({
      jobId: 'job-42',
      taskType: 'object_detection',
      modelName: 'yolo11n',
    });
    await runTraining(callbacks, async (cb, signal) => {
      for (let epoch = 0; epoch < 10 && !signal.aborted; epoch++) {
        await cb.onEpochBegin(epoch);
        for (let i = 0; i < 500; i++) cb.onBatchEnd(epoch * 500 + i, { loss: await trainStep(), lr: 1e-3 });
        const { isBest, summary } = await cb.onEpochEnd(epoch, { mAP50: await validate(), train_loss: 0.2 });
        console.log(summary);
        if (isBest) await cb.logArtifact(path.join(shared, 'best.pt'), 'checkpoints');
      }
    });
    // ----
    const { job } = await callbacks.client.getJob({ jobId: 'job-42' });
    expect(job?.status).toBe(JobStatus.COMPLETED);
    expect(job?.epochsReported).toBe(10);
    expect(lines).toHaveLength(10);
    expect(callbacks.stats()).toMatchObject({ pointsAccepted: 10_000, pointsDropped: 0, pointsFailed: 0 });
  } finally {
    delete process.env.TRAINING_CALLBACKS_ADDRESS;
    await rm(shared, { recursive: true, force: true });
  }
}, 30_000);
