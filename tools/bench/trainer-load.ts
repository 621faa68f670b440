// The load generator of pg-bench.ts: ONE light process playing N concurrent trainers, each with its own
// gRPC channels (a local subchannel pool per channel: its own HTTP/2 connection): POINTS_PER_S batch
// points per second each (10 metrics per step), and an EndEpoch every EPOCH_EVERY_S seconds as a plain
// unary call, whose round trip it times: the sidecar's end-epoch latency while it ingests everyone's
// points. Trainers are spread round-robin over the addresses.
//
// The batch points go the way the TypeScript client sends them — every BATCH_FLUSH_INTERVAL_MS one
// ReportBatchMetrics stream per trainer carrying the steps since the last one (one block: 40 steps × 10
// metrics at 2,000 points/s), at most one stream in flight per trainer, the next one carrying what came
// meanwhile — but not through 50 TypeScript clients: 50 trainers are 50 processes in production, and
// 50 clients in one heap made this process's own garbage collections (10–40 ms scavenges) delay the
// EndEpoch it times. Each message is written with the client's own encoder (encodeBatchRequest: the
// bytes the client sends) from typed arrays the trainer reuses, on a raw grpc-js channel, so the heap
// here does almost nothing while the sidecar does what 50 trainers ask of it.
// - The trainers' starts are spread over one flush interval, as independent trainers' would be: started
//   in the same millisecond, the sidecar would receive all 50 streams as one burst five times a second —
//   a synchronisation no set of separate trainers has. A trainer's first EndEpoch comes one epoch after
//   its start, as an epoch's end does (not in the second in which all 50 begin), and the first EndEpochs
//   are spread over one epoch.
// - EndEpoch goes on its own channel, timed alone: not behind the trainer's batch stream (the client's
//   onEpochEnd sends the epoch's queued points first, its per-job order, and would time its queue).
// Prints one JSON line: {"endEpochMs": [...], "points": acknowledged, "sent": n, "lost": n,
// "generatorLoopDelayMs": {"p99", "max"}} — lost: points of streams that failed, or that the sidecar
// did not accept; the loop delay: how late this process itself ran its callbacks.
//   node --conditions=@training-callbacks/source trainer-load.ts ADDR[,ADDR…] TRAINERS POINTS_PER_S EPOCH_EVERY_S SECONDS
import { randomUUID } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fromBinary } from '@bufbuild/protobuf';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { encodeBatchRequest } from '@training-callbacks/client/batch-encoding';
import { createClient } from '@training-callbacks/grpc-adapter';
import {
  BATCH_FLUSH_INTERVAL_MS,
  TrainingCallbacks as Service,
  TaskType,
  TrainingOutcome,
} from '@training-callbacks/proto';

const [addressList, trainersArg, pointsArg, epochEveryArg, secondsArg] = process.argv.slice(2);
const addresses = addressList!.split(',');
const trainers = Number(trainersArg);
const pointsPerSecond = Number(pointsArg);
const epochEveryMs = Number(epochEveryArg) * 1000;
const durationMs = Number(secondsArg) * 1000;
const METRICS = 10;
const stepsPerSecond = pointsPerSecond / METRICS;
const names = Array.from({ length: METRICS }, (_, i) => (i === 0 ? 'loss' : `metric_${i}`));
/** The client's default per-call deadline. */
const DEADLINE_MS = 30_000;
const channelOptions = { 'grpc.use_local_subchannel_pool': 1 };
const batchMethod = Service.method.reportBatchMetrics;
const batchPath = `/${Service.typeName}/${batchMethod.name}`;

const endEpochMs: number[] = [];
let sent = 0;
let acknowledged = 0;
let lost = 0;

/** One ReportBatchMetrics stream of one pre-encoded message; resolves with the accepted points. */
function reportBatch(channel: Client, bytes: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = channel.makeClientStreamRequest(
      batchPath,
      (b: Buffer) => b,
      (b: Buffer) => fromBinary(batchMethod.output, b),
      new Metadata(),
      { deadline: Date.now() + DEADLINE_MS },
      (error, response) => (error ? reject(error) : resolve(Number(response!.acceptedPoints))),
    );
    call.write(bytes);
    call.end();
  });
}

async function trainer(n: number, runId: string): Promise<void> {
  const address = addresses[n % addresses.length]!;
  const jobId = `load-${runId}-${n}`;
  const sessionId = randomUUID();
  await sleep((BATCH_FLUSH_INTERVAL_MS * n) / trainers);
  const rpc = createClient(Service, address, { channelOptions });
  const channel = new Client(address, credentials.createInsecure(), channelOptions);
  await rpc.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'bench' });
  const start = Date.now();
  const stop = start + durationMs;
  let epoch = 0;

  // Batch points: what the steps since the last stream came to, sent once the previous one answered.
  // The block's arrays are reused (grown when a late stream carries more steps): values change per step.
  let steps = new Float64Array(64);
  let values = new Float64Array(64 * METRICS);
  let nextStep = 0;
  const batches = (async () => {
    for (let due = start + BATCH_FLUSH_INTERVAL_MS; ; due += BATCH_FLUSH_INTERVAL_MS) {
      await sleep(Math.max(0, due - Date.now()));
      const now = Math.min(Date.now(), stop);
      const upTo = Math.floor(((now - start) / 1000) * stepsPerSecond);
      const rows = upTo - nextStep;
      if (rows > 0) {
        if (rows > steps.length) {
          steps = new Float64Array(rows * 2);
          values = new Float64Array(rows * 2 * METRICS);
        }
        for (let r = 0; r < rows; r++) {
          const step = nextStep + r;
          steps[r] = step;
          for (let m = 0; m < METRICS; m++) values[r * METRICS + m] = (step % 1000) * 1e-3 + m + 0.5;
        }
        const block = {
          seq: 0,
          epoch,
          names,
          steps: steps.subarray(0, rows),
          values: values.subarray(0, rows * METRICS),
        };
        const points = rows * METRICS;
        nextStep = upTo;
        sent += points;
        try {
          const accepted = await reportBatch(channel, encodeBatchRequest(jobId, sessionId, [block]));
          acknowledged += accepted;
          lost += points - accepted;
        } catch {
          lost += points;
        }
      }
      if (now >= stop) return;
    }
  })();

  // EndEpoch: a plain unary call timed alone (see the header); a refusal or failure ends the run loudly.
  for (let at = start + epochEveryMs * (1 + n / trainers); at < stop; at += epochEveryMs) {
    await sleep(Math.max(0, at - Date.now()));
    const t = process.hrtime.bigint();
    await rpc.endEpoch({
      jobId,
      epoch,
      metrics: { accuracy: 0.5 + epoch / 1000, val_loss: 1 / (epoch + 1) },
    });
    endEpochMs.push(Number(process.hrtime.bigint() - t) / 1e6);
    epoch++;
  }
  await batches;
  await rpc.endTraining({ jobId, sessionId, outcome: TrainingOutcome.COMPLETED });
  channel.close();
  rpc.close();
}

// This process's own event-loop delay: an EndEpoch answer that waits for the loop is timed late, so a
// p99 the generator measures is only the sidecar's when this stays well below it.
const loopDelay = monitorEventLoopDelay({ resolution: 1 });
loopDelay.enable();
const runId = Math.random().toString(36).slice(2, 8);
await Promise.all(Array.from({ length: trainers }, (_, n) => trainer(n, runId)));
loopDelay.disable();
const generatorLoopDelayMs = {
  p99: loopDelay.percentile(99) / 1e6,
  max: loopDelay.max / 1e6,
};
console.log(JSON.stringify({ endEpochMs, points: acknowledged, sent, lost, generatorLoopDelayMs }));
