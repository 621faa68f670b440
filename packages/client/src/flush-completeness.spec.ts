// Regression: flush() resolved while points were still pending. With 10 metrics per step the
// 8192-point blocks hold 819 rows; the 820th row of a full block was lost (written past the end of
// its Float64Array) while still counted as pending, so every full block dropped one step and
// `pointsPending` never reached 0. The pattern is the one of `tools/bench/sidecar-bench.ts --quick`:
// several blocks, an epoch change mid-run, yields every 8192 steps, then flush().
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks as Service } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { collectAll } from './pages.ts';
import { startSidecarProcess } from './testing/sidecar.ts';
import { TrainingCallbacks } from './training-callbacks.ts';

describe('flush completeness', () => {
  it('sends every point of full blocks whose rows do not divide the block size', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
    await using callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: 'flush-completeness',
      taskType: 'image_classification',
      deadlineMs: 30_000,
    });
    await callbacks.onTrainBegin();
    const cols = 10;
    const steps = 20_000;
    const epochLength = 10_000;
    const names = Array.from({ length: cols }, (_, i) => (i === 0 ? 'loss' : `metric_${i}`));
    const metrics: Record<string, number> = Object.fromEntries(names.map((name) => [name, 0]));
    for (let step = 0; step < steps; step++) {
      for (let i = 0; i < cols; i++) metrics[names[i] as string] = step * cols + i;
      callbacks.onBatchEnd(step, metrics, { epoch: Math.floor(step / epochLength) });
      if (step % 8192 === 8191) await new Promise((resolve) => setImmediate(resolve));
    }
    await callbacks.flush();

    const stats = callbacks.stats();
    expect(stats.pointsBuffered).toBe(steps * cols);
    expect(stats).toMatchObject({
      pointsAccepted: stats.pointsBuffered,
      pointsPending: 0,
      pointsInFlight: 0,
      pointsDropped: 0,
      pointsFailed: 0,
      pointsRejected: 0,
    });

    const reader = createClient(Service, sidecar.address, {
      channelOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    });
    try {
      const blocks = await collectAll(reader.listBatchMetrics, { jobId: callbacks.jobId }, (p) => p.blocks);
      expect(blocks.length).toBeGreaterThan(2);
      const seen: number[] = [];
      for (const block of blocks) {
        expect(block.names).toHaveLength(cols);
        expect(block.values).toHaveLength(block.steps.length * cols);
        block.steps.forEach((big, row) => {
          const step = Number(big);
          expect(block.epoch).toBe(Math.floor(step / epochLength));
          const rowValues = block.values.slice(row * cols, (row + 1) * cols).sort((a, b) => a - b);
          expect(rowValues[0]).toBe(step * cols);
          expect(rowValues[cols - 1]).toBe(step * cols + cols - 1);
          seen.push(step);
        });
      }
      seen.sort((a, b) => a - b);
      expect(seen).toEqual(Array.from({ length: steps }, (_, i) => i));
    } finally {
      reader.close();
    }
  }, 60_000);
});
