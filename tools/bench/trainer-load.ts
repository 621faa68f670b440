// The load generator of pg-bench.ts: ONE light process playing N concurrent trainers, each on its own
// gRPC channel (a local subchannel pool per trainer: its own HTTP/2 connection) through the TypeScript
// client: POINTS_PER_S batch points per second each (10 metrics per step), and an EndEpoch every
// EPOCH_EVERY_S seconds as a plain unary call (its own channel), whose round trip it times: the sidecar's
// end-epoch latency while it ingests everyone's points. (The client's onEpochEnd would first send the
// epoch's queued points, its per-job order, and time the client's queue instead.) Trainers are spread
// round-robin over the addresses.
//
// 50 trainers are 50 processes in production, each with its own clock; here they share one process,
// so two artifacts of the sharing are kept out of what is measured:
// - Their starts are spread over one flush interval of the client (200 ms), as independent trainers'
//   would be: started in the same millisecond, every client's flush timer fires in the same tick, and
//   the sidecar receives all 50 streams as one burst that an EndEpoch then waits behind, five times a
//   second — a synchronisation no set of separate trainers has.
// - The metric objects a training loop makes are not the client's cost but 50 trainers' in one heap:
//   the steps reuse a ring of prebuilt objects, so that the generator's collections (whose pauses
//   delay every trainer's timers at once, and the EndEpoch being timed) come from the client alone.
// Prints one JSON line: {"endEpochMs": [...], "points": n, "lost": n}.
//   node --conditions=@training-callbacks/source trainer-load.ts ADDR[,ADDR…] TRAINERS POINTS_PER_S EPOCH_EVERY_S SECONDS
import { setTimeout as sleep } from 'node:timers/promises';
import { TrainingCallbacks } from '@training-callbacks/client';
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks as Service } from '@training-callbacks/proto';

const [addressList, trainersArg, pointsArg, epochEveryArg, secondsArg] = process.argv.slice(2);
const addresses = addressList!.split(',');
const trainers = Number(trainersArg);
const pointsPerSecond = Number(pointsArg);
const epochEveryMs = Number(epochEveryArg) * 1000;
const durationMs = Number(secondsArg) * 1000;
const METRICS = 10;
const TICK_MS = 50; // steps are sent in ticks: 2,000 points/s = 200 steps/s = 10 steps per 50 ms
const stepsPerTick = Math.max(1, Math.round((pointsPerSecond / METRICS) * (TICK_MS / 1000)));
const names = Array.from({ length: METRICS }, (_, i) => (i === 0 ? 'loss' : `metric_${i}`));
/** The client's default batch.flushIntervalMs: the trainers' starts are spread over it (see the header). */
const FLUSH_INTERVAL_MS = 200;
/** Prebuilt metric objects the steps cycle through (see the header); their values differ step by step. */
const RING = 64;
const metricsRing: Record<string, number>[] = Array.from({ length: RING }, (_, r) =>
  Object.fromEntries(names.map((name, m) => [name, r * 1e-3 + m + 0.5])),
);

const endEpochMs: number[] = [];
let points = 0;
let lost = 0;

async function trainer(n: number, runId: string): Promise<void> {
  await sleep((FLUSH_INTERVAL_MS * n) / trainers);
  const callbacks = new TrainingCallbacks({
    address: addresses[n % addresses.length]!,
    jobId: `load-${runId}-${n}`, // the same job as the EndEpoch calls below
    taskType: 'image_classification',
    framework: 'bench',
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  await callbacks.onTrainBegin();
  const rpc = createClient(Service, addresses[n % addresses.length]!, {
    channelOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  const jobId = `load-${runId}-${n}`;
  const start = Date.now();
  // Trainers start spread over one epoch interval, so their EndEpochs do not all come at once.
  let nextEpochAt = start + (epochEveryMs * n) / trainers;
  let step = 0;
  let epoch = 0;
  let stepOptions = { epoch };
  while (Date.now() - start < durationMs) {
    const tickStart = Date.now();
    for (let i = 0; i < stepsPerTick; i++, step++) {
      callbacks.onBatchEnd(step, metricsRing[step % RING]!, stepOptions);
      points += METRICS;
    }
    if (Date.now() >= nextEpochAt) {
      // A plain unary call, timed alone (see the header); a refusal or failure ends the run loudly.
      const t = process.hrtime.bigint();
      await rpc.endEpoch({
        jobId,
        epoch,
        metrics: { accuracy: 0.5 + epoch / 1000, val_loss: 1 / (epoch + 1) },
      });
      endEpochMs.push(Number(process.hrtime.bigint() - t) / 1e6);
      epoch++;
      stepOptions = { epoch };
      nextEpochAt += epochEveryMs;
    }
    await sleep(Math.max(0, TICK_MS - (Date.now() - tickStart)));
  }
  const { losses } = await callbacks.onTrainEnd();
  lost += losses.droppedPoints + losses.refusedPoints + losses.failedWrites;
  callbacks.close();
  rpc.close();
}

const runId = Math.random().toString(36).slice(2, 8);
await Promise.all(Array.from({ length: trainers }, (_, n) => trainer(n, runId)));
console.log(JSON.stringify({ endEpochMs, points, lost }));
