// One trainer streaming batch points through the TypeScript client as fast as it can: the sustained
// ingest measurement of sidecar-bench.ts and pg-bench.ts.
import { TrainingCallbacks } from '@training-callbacks/client';

export interface IngestRun {
  address: string;
  jobId: string;
  steps: number;
  metricsPerStep: number;
  channelOptions?: Record<string, number | string>;
}

/**
 * Streams `steps` × `metricsPerStep` points (yielding every 8192 steps so that the background sender
 * runs, as it does between a trainer's steps), flushes, and ends the job. Throws when the client lost
 * or the sidecar refused any point: a rate of lost points would mean nothing.
 */
export async function runIngest(run: IngestRun): Promise<{ acknowledged: number; pointsPerSecond: number }> {
  const names = Array.from({ length: run.metricsPerStep }, (_, i) => (i === 0 ? 'loss' : `metric_${i}`));
  const callbacks = new TrainingCallbacks({
    address: run.address,
    jobId: run.jobId,
    taskType: 'image_classification',
    framework: 'bench',
    ...(run.channelOptions && { channelOptions: run.channelOptions }),
  });
  await callbacks.onTrainBegin();
  const metrics: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  const start = process.hrtime.bigint();
  for (let step = 0; step < run.steps; step++) {
    for (let i = 0; i < run.metricsPerStep; i++) metrics[names[i]!] = step * 1e-3 + i;
    callbacks.onBatchEnd(step, metrics, { epoch: Math.floor(step / 10_000) });
    if (step % 8192 === 8191) await new Promise((r) => setImmediate(r));
  }
  await callbacks.flush();
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  const batch = callbacks.stats();
  if (batch.pointsDropped || batch.pointsFailed || batch.pointsRejected) {
    throw new Error(`ingest lost points: ${JSON.stringify(batch)}`);
  }
  await callbacks.onTrainEnd();
  callbacks.close();
  return { acknowledged: batch.pointsAccepted, pointsPerSecond: batch.pointsAccepted / seconds };
}
