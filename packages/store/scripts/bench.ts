// Quick latency/throughput measurement of the store's hot paths on a real SQLite file (not a test).
//
//   cd packages/store && node --conditions=@training-callbacks/source scripts/bench.ts [--full]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BatchBlock, openStore } from '../src/index.ts';

const durability = process.argv.includes('--full') ? 'full' : 'normal';
const dir = mkdtempSync(join(tmpdir(), 'store-bench-'));
const store = await openStore({ dbPath: join(dir, 'bench.db'), durability });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

try {
  await store.createOrGetJob({
    jobId: 'bench',
    task: 'image_classification',
    framework: 'timm',
    modelName: 'resnet50',
    modelConfig: {},
    trainingConfig: {},
    params: {},
    customMetrics: [],
    startEpoch: 0,
    primaryMetric: 'accuracy',
  });

  const calls = 5000;
  const warmup = 500;
  const samples: number[] = [];
  for (let i = 0; i < calls + warmup; i++) {
    const epoch = i % 300; // re-reports too, as a resumed job would
    const metrics = { loss: 1 / (i + 1), accuracy: i / (calls + warmup), learning_rate: 1e-3, top5: 0.9 };
    const t0 = process.hrtime.bigint();
    await store.saveEpoch({
      jobId: 'bench',
      epoch,
      metrics,
      columns: { loss: metrics.loss, accuracy: metrics.accuracy, learningRate: metrics.learning_rate },
      timestamp: new Date(),
      best: { epoch, value: metrics.accuracy },
    });
    const t1 = process.hrtime.bigint();
    if (i >= warmup) samples.push(Number(t1 - t0) / 1e6);
  }
  samples.sort((a, b) => a - b);
  console.log(
    `saveEpoch (${durability}) over ${calls} calls: p50 ${percentile(samples, 50).toFixed(3)} ms, ` +
      `p99 ${percentile(samples, 99).toFixed(3)} ms, max ${samples[samples.length - 1]!.toFixed(3)} ms`,
  );

  const names = ['loss', 'lr', 'grad_norm', 'throughput'];
  const rowsPerBlock = 2048;
  const blocksPerCall = 4;
  const callsBatch = 100;
  let step = 0n;
  const makeBlock = (): BatchBlock => {
    const steps = new BigInt64Array(rowsPerBlock);
    const values = new Float64Array(rowsPerBlock * names.length);
    for (let r = 0; r < rowsPerBlock; r++) {
      steps[r] = step++;
      for (let c = 0; c < names.length; c++) values[r * names.length + c] = Math.random();
    }
    return { epoch: 0, names, steps, values };
  };
  const payloads = Array.from({ length: callsBatch }, () => Array.from({ length: blocksPerCall }, makeBlock));
  const t0 = process.hrtime.bigint();
  for (const blocks of payloads) await store.appendBatchBlocks('bench', blocks);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const points = callsBatch * blocksPerCall * rowsPerBlock * names.length;
  console.log(
    `appendBatchBlocks (${durability}): ${points} points in ${seconds.toFixed(3)} s = ` +
      `${(points / seconds / 1e6).toFixed(1)} M points/s (${blocksPerCall} blocks × ${rowsPerBlock} rows × ${names.length} names per call)`,
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
