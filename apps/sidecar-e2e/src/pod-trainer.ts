// The trainer container of the pod rehearsal (pod-rehearsal.spec.ts): a training loop on the TS client
// that finds the sidecar, its token and its job id only through the environment the manifest gives
// the trainer (TRAINING_CALLBACKS_ADDRESS, TRAINING_CALLBACKS_TOKEN_FILE, TRAINING_CALLBACKS_JOB_ID),
// writes checkpoints into the shared volume and logs them by path, then exits like a trainer does.
//   node --conditions=@training-callbacks/source pod-trainer.ts SHARED_DIR EPOCHS STEPS_PER_EPOCH ARTIFACT_EVERY
import { writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { runTraining, TrainingCallbacks } from '@training-callbacks/client';
import { batchLoss, checkpointBytes, epochMetrics, learningRate } from './pod-workload.ts';

const [sharedDir, epochsArg, stepsArg, everyArg] = process.argv.slice(2);
const epochs = Number(epochsArg);
const steps = Number(stepsArg);
const every = Number(everyArg);
const jobId = process.env.TRAINING_CALLBACKS_JOB_ID;
if (!sharedDir || !jobId || !(epochs > 0) || !(steps > 0) || !(every > 0)) {
  console.error(
    'usage: pod-trainer.ts SHARED_DIR EPOCHS STEPS_PER_EPOCH ARTIFACT_EVERY (and TRAINING_CALLBACKS_JOB_ID)',
  );
  process.exit(2);
}

const checkpoints = path.join(sharedDir, 'run');
await mkdir(checkpoints, { recursive: true });
await using callbacks = new TrainingCallbacks({
  jobId,
  taskType: 'image_classification',
  framework: 'custom',
});
let logged = 0;
await runTraining(
  callbacks,
  async (cb) => {
    for (let epoch = 0; epoch < epochs; epoch++) {
      await cb.onEpochBegin(epoch);
      for (let i = 0; i < steps; i++) {
        const step = epoch * steps + i;
        cb.onBatchEnd(step, { loss: batchLoss(step), lr: learningRate(step) });
        // A training step awaits the GPU: the batch stream runs meanwhile.
        if (i % 256 === 255) await new Promise((r) => setImmediate(r));
      }
      await cb.onEpochEnd(epoch, epochMetrics(epoch));
      if (epoch % every === every - 1) {
        const file = path.join(checkpoints, `epoch-${epoch}.pt`);
        writeFileSync(file, checkpointBytes(epoch));
        await cb.logArtifact(file, 'checkpoints');
        logged++;
      }
    }
  },
  { finalMetrics: () => ({ accuracy: epochMetrics(epochs - 1).accuracy }) },
);
const stats = callbacks.stats();
console.log(
  JSON.stringify({
    event: 'trainer_done',
    jobId,
    artifacts: logged,
    accepted: stats.pointsAccepted,
    losses: callbacks.losses(),
  }),
);
