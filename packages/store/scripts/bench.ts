// Quick latency/throughput measurement of the store's hot paths on a real SQLite file, or on a real
// PostgreSQL server started for it (not a test).
//
//   cd packages/store && node --conditions=@training-callbacks/source scripts/bench.ts [--full] [--postgresql]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres } from '@training-callbacks/postgres-testing';
import { type BatchBlock, openStore } from '../src/index.ts';
import { sampleJob } from '../src/testing.ts';

const durability = process.argv.includes('--full') ? 'full' : 'normal';
const dir = mkdtempSync(join(tmpdir(), 'store-bench-'));
const postgres = process.argv.includes('--postgresql')
  ? await startPostgres({ database: 'bench' })
  : undefined;
const store = await openStore({ dbPath: postgres?.url ?? join(dir, 'bench.db'), durability });

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const JOB = sampleJob('bench');

try {
  await store.createOrGetJob(JOB);

  await store.createOrGetJob({ ...JOB, jobId: 'bench-outbox' });
  await store.createOrGetJob({ ...JOB, jobId: 'bench-warm' });

  const calls = 5000;
  const warmup = 1000;
  /** Times `calls` sequential calls of `call(i)` after `warmup` untimed ones: p50/p99 and CPU per call. */
  async function measure(label: string, call: (i: number, warm: boolean) => Promise<unknown>): Promise<void> {
    for (let i = 0; i < warmup; i++) await call(i, true);
    const samples: number[] = [];
    const cpu0 = process.cpuUsage();
    const wall0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) {
      const t0 = process.hrtime.bigint();
      await call(i, false);
      samples.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    const wallMs = Number(process.hrtime.bigint() - wall0) / 1e6;
    const cpu = process.cpuUsage(cpu0);
    samples.sort((a, b) => a - b);
    console.log(
      `${label} (${durability}) over ${calls} calls${postgres ? ' on PostgreSQL' : ''}: p50 ${percentile(samples, 50).toFixed(3)} ms, ` +
        `p99 ${percentile(samples, 99).toFixed(3)} ms, max ${samples[samples.length - 1]!.toFixed(3)} ms, ` +
        `mean ${(wallMs / calls).toFixed(3)} ms, CPU ${((cpu.user + cpu.system) / calls).toFixed(0)} µs/call`,
    );
  }
  const epochInput = (jobId: string, epoch: number, i: number) => {
    const metrics = { loss: 1 / (i + 1), accuracy: i / (calls + warmup), learning_rate: 1e-3, top5: 0.9 };
    return {
      jobId,
      epoch,
      metrics,
      columns: { loss: metrics.loss, accuracy: metrics.accuracy, learningRate: metrics.learning_rate },
      timestamp: new Date(),
      best: { epoch, value: metrics.accuracy },
    };
  };
  // A few thousand epochs in one job, each new (the usual case), then re-reports of stored epochs.
  await measure('saveEpoch, new epochs', (i, warm) =>
    store.saveEpoch(epochInput(warm ? 'bench-warm' : 'bench', i, i)),
  );
  await measure('saveEpoch, re-reports', (i) => store.saveEpoch(epochInput('bench', i % 300, i)));
  await measure('saveEpoch + 1 outbox item', (i, warm) =>
    store.saveEpoch({
      ...epochInput('bench-outbox', warm ? calls + i : i, i),
      outbox: [{ kind: 'epoch_metrics', payload: { epoch: i, metrics: { loss: 1 / (i + 1) } } }],
    }),
  );
  await measure('beginEpoch', (i) => store.beginEpoch('bench-warm', 10_000 + i, new Date()));

  // The 50-trainer load's shape: many small streams, one block of 40 steps × 10 names each (400
  // points), each referenced by one outbox entry — the cost is per call, not per point.
  await store.createOrGetJob({ ...JOB, jobId: 'bench-streams' });
  const streamNames = Array.from({ length: 10 }, (_, c) => `metric_${c}`);
  let streamStep = 0n;
  const streamBlock = (): BatchBlock => {
    const steps = new BigInt64Array(40);
    for (let r = 0; r < 40; r++) steps[r] = streamStep++;
    return { epoch: 0, names: streamNames, steps, values: Float64Array.from({ length: 400 }, Math.random) };
  };
  await measure('appendBatchBlocks, 400 points + 1 outbox ref', () =>
    store.appendBatchBlocks('bench-streams', [streamBlock()], { outboxKind: 'batch' }),
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
  await postgres?.stop();
}
