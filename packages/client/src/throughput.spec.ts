// A smoke test of the hot path at benchmark scale: one million batch points through the client
// into the real sidecar (a child process), every one acknowledged and read back.
import { createClient } from '@training-callbacks/grpc-adapter';
import { TrainingCallbacks as Service } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import { collectAll } from './pages.ts';
import { startSidecarProcess } from './testing/sidecar.ts';
import { TrainingCallbacks } from './training-callbacks.ts';

describe('throughput', () => {
  it('moves 1 M points into the real sidecar, all acknowledged', async () => {
    await using sidecar = await startSidecarProcess({ args: ['--quiet'] });
    await using callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: 'throughput',
      taskType: 'object_detection',
      deadlineMs: 30_000,
    });
    await callbacks.onTrainBegin();
    const metrics = { loss: 0, lr: 1e-3, box_loss: 0, cls_loss: 0 };
    const steps = 250_000;
    const started = performance.now();
    for (let step = 0; step < steps; step++) {
      metrics.loss = 1 / (step + 1);
      metrics.box_loss = step;
      callbacks.onBatchEnd(step, metrics);
      // A real loop awaits the GPU every step; yield now and then so the background stream runs.
      if (step % 256 === 255) await new Promise((resolve) => setImmediate(resolve));
    }
    await callbacks.flush();
    const seconds = (performance.now() - started) / 1000;
    const stats = callbacks.stats();
    expect(stats).toMatchObject({ pointsAccepted: 1_000_000, pointsDropped: 0, pointsFailed: 0 });
    console.log(
      `1 M points in ${seconds.toFixed(2)} s: ${(1 / seconds).toFixed(2)} M points/s, ${stats.flushes} streams`,
    );

    const reader = createClient(Service, sidecar.address, {
      channelOptions: { 'grpc.max_receive_message_length': 64 * 1024 * 1024 },
    });
    try {
      // Pages of at most 262 144 points: every page, followed to the end.
      const blocks = await collectAll(reader.listBatchMetrics, { jobId: 'throughput' }, (p) => p.blocks);
      let points = 0;
      for (const block of blocks) points += block.values.length;
      expect(points).toBe(1_000_000);
    } finally {
      reader.close();
    }
  }, 60_000);
});
