// What the rehearsal's trainer reports (pod-trainer.ts) and the test expects back from MLflow
// (pod-rehearsal.spec.ts): one definition for both.
import { createHash } from 'node:crypto';

/** Epoch metrics of `epoch` (image classification: accuracy is the primary metric). */
export function epochMetrics(epoch: number): { accuracy: number; train_loss: number; val_loss: number } {
  return { accuracy: 0.5 + epoch / 1000, train_loss: 1 / (epoch + 1), val_loss: 1.1 / (epoch + 1) };
}

export const batchLoss = (step: number) => 2 + Math.sin(step / 50);
export const learningRate = (step: number) => 1e-3 * 0.999 ** (step % 1000);

/** A checkpoint's bytes: distinct per epoch, ~64 KiB, reproducible. */
export function checkpointBytes(epoch: number): Buffer {
  const out = Buffer.alloc(64 * 1024 + epoch);
  let block = Buffer.from(`checkpoint ${epoch}`);
  for (let i = 0; i < out.length; i += 32) {
    block = createHash('sha256').update(block).digest();
    block.copy(out, i);
  }
  return out;
}
