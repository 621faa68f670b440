import { describe, expect, it } from 'vitest';
import { BatchBuffer, type SealedBlock } from './batch-buffer.ts';

function plain(block: SealedBlock) {
  return { epoch: block.epoch, names: [...block.names], steps: [...block.steps], values: [...block.values] };
}

describe('BatchBuffer block building', () => {
  it('puts consecutive steps with the same names into one row-major block', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1000, capacityPoints: 10_000 });
    for (let step = 0; step < 40; step++) buffer.append(0, step, { loss: step, lr: step / 10 });
    buffer.seal();
    const blocks = buffer.take(Number.POSITIVE_INFINITY);
    expect(blocks).toHaveLength(1);
    const block = plain(blocks[0]!);
    expect(block.names).toEqual(['loss', 'lr']);
    expect(block.steps).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(block.values.slice(0, 6)).toEqual([0, 0, 1, 0.1, 2, 0.2]);
    expect(block.values).toHaveLength(80);
    expect(buffer.appended).toBe(80);
  });

  it('starts a new block when the names, their order, or the epoch change', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1000, capacityPoints: 10_000 });
    buffer.append(0, 1, { loss: 1 });
    buffer.append(0, 2, { loss: 2 });
    buffer.append(0, 3, { loss: 3, lr: 0.1 });
    buffer.append(0, 4, { lr: 0.1, loss: 4 });
    buffer.append(1, 5, { lr: 0.1, loss: 5 });
    buffer.append(1, 6, { lr: 0.2, loss: 6 });
    buffer.seal();
    expect(buffer.take(Number.POSITIVE_INFINITY).map(plain)).toEqual([
      { epoch: 0, names: ['loss'], steps: [1, 2], values: [1, 2] },
      { epoch: 0, names: ['loss', 'lr'], steps: [3], values: [3, 0.1] },
      { epoch: 0, names: ['lr', 'loss'], steps: [4], values: [0.1, 4] },
      { epoch: 1, names: ['lr', 'loss'], steps: [5, 6], values: [0.1, 5, 0.2, 6] },
    ]);
  });

  it('does not keep a half-written row when a name differs in the middle', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1000, capacityPoints: 10_000 });
    buffer.append(0, 1, { a: 1, b: 2, c: 3 });
    buffer.append(0, 2, { a: 10, x: 20, c: 30 });
    buffer.append(0, 3, { a: 100, b: 200, c: 300 });
    buffer.seal();
    expect(buffer.take(Number.POSITIVE_INFINITY).map(plain)).toEqual([
      { epoch: 0, names: ['a', 'b', 'c'], steps: [1], values: [1, 2, 3] },
      { epoch: 0, names: ['a', 'x', 'c'], steps: [2], values: [10, 20, 30] },
      { epoch: 0, names: ['a', 'b', 'c'], steps: [3], values: [100, 200, 300] },
    ]);
  });

  it('seals a block when it reaches the block size, growing its arrays on the way', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 300, capacityPoints: 10_000 });
    for (let step = 0; step < 500; step++) buffer.append(2, step, { a: step, b: -step, c: step * 2 });
    expect(buffer.sealedBlocks).toBe(5); // 100 rows of 3 names per block
    expect(buffer.pending).toBe(1500);
    buffer.seal();
    const blocks = buffer.take(Number.POSITIVE_INFINITY);
    expect(blocks.map((b) => b.steps.length)).toEqual([100, 100, 100, 100, 100]);
    const rows = blocks.flatMap((b) => [...b.steps]);
    expect(rows).toEqual(Array.from({ length: 500 }, (_, i) => i));
    const last = blocks[4]!;
    expect([...last.values.subarray(-3)]).toEqual([499, -499, 998]);
    expect(blocks.map((b) => b.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('keeps every row when the names do not divide the block size', () => {
    // Regression: 8192-point blocks of 10 names hold 819 rows (8190 points). The 820th row used to be
    // written past the end of the full arrays (silently ignored by Float64Array) and then sealed, so
    // one step per block vanished while its points stayed counted as pending forever.
    for (const [maxBlockPoints, cols] of [
      [8192, 10],
      [100, 7],
      [10, 3],
      [5, 8],
    ] as const) {
      const buffer = new BatchBuffer({ maxBlockPoints, capacityPoints: 1_000_000 });
      const metrics: Record<string, number> = {};
      for (let i = 0; i < cols; i++) metrics[`m${i}`] = 0;
      const steps = 2000;
      for (let step = 0; step < steps; step++) {
        for (let i = 0; i < cols; i++) metrics[`m${i}`] = step * cols + i;
        expect(buffer.append(step < 1000 ? 0 : 1, step, metrics)).toBe(true);
      }
      buffer.seal();
      const blocks = buffer.take(Number.POSITIVE_INFINITY);
      const maxRows = Math.max(1, Math.floor(maxBlockPoints / cols));
      for (const block of blocks) {
        expect(block.steps.length).toBeLessThanOrEqual(maxRows);
        expect(block.values.length).toBe(block.steps.length * cols);
      }
      expect(blocks.flatMap((b) => [...b.steps])).toEqual(Array.from({ length: steps }, (_, i) => i));
      expect(blocks.flatMap((b) => [...b.values])).toEqual(Array.from({ length: steps * cols }, (_, i) => i));
      expect(buffer.pending).toBe(0);
      expect(buffer.appended).toBe(steps * cols);
      buffer.release(blocks);
      expect(buffer.held).toBe(0);
    }
  });

  it('keeps NaN and Infinity as sent', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 100, capacityPoints: 100 });
    buffer.append(0, 0, { loss: Number.NaN, g: Number.POSITIVE_INFINITY });
    buffer.seal();
    const [block] = buffer.take(100);
    expect(Number.isNaN(block!.values[0])).toBe(true);
    expect(block!.values[1]).toBe(Number.POSITIVE_INFINITY);
  });

  it('ignores bad steps and empty metrics without throwing, and counts them', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 100, capacityPoints: 100 });
    expect(buffer.append(0, -1, { loss: 1 })).toBe(false);
    expect(buffer.append(0, 1.5, { loss: 1 })).toBe(false);
    expect(buffer.append(-1, 1, { loss: 1 })).toBe(false);
    expect(buffer.append(0, Number.NaN, { loss: 1 })).toBe(false);
    expect(buffer.append(0, 1, {})).toBe(false);
    expect(buffer.invalidSteps).toBe(5);
    expect(buffer.appended).toBe(0);
  });
});

describe('BatchBuffer bounds (drop-newest)', () => {
  it('drops new points once capacity is held, counting them', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 4, capacityPoints: 10 });
    for (let step = 0; step < 10; step++) buffer.append(0, step, { a: step, b: step });
    expect(buffer.appended).toBe(10);
    expect(buffer.dropped).toBe(10);
    expect(buffer.held).toBe(10);
    buffer.seal();
    const kept = buffer.take(Number.POSITIVE_INFINITY).flatMap((b) => [...b.steps]);
    expect(kept).toEqual([0, 1, 2, 3, 4]); // the oldest are kept
  });

  it('counts taken-but-unacknowledged points until they are released', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 4, capacityPoints: 8 });
    for (let step = 0; step < 4; step++) buffer.append(0, step, { a: 1, b: 2 });
    buffer.seal();
    const inFlight = buffer.take(100);
    expect(buffer.pending).toBe(0);
    expect(buffer.held).toBe(8);
    expect(buffer.append(0, 4, { a: 1, b: 2 })).toBe(false);
    buffer.release(inFlight);
    expect(buffer.append(0, 5, { a: 1, b: 2 })).toBe(true);
    expect(buffer.dropped).toBe(2);
  });

  it('takes at most the requested points but always at least one block', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 10, capacityPoints: 1000 });
    for (let step = 0; step < 50; step++) buffer.append(0, step, { a: step });
    expect(buffer.take(25).length).toBe(2);
    expect(buffer.take(1).length).toBe(1);
    expect(buffer.take(1000).length).toBe(2);
  });

  it('allocates no per-step objects on the fast path (values land in typed arrays)', () => {
    const buffer = new BatchBuffer({ maxBlockPoints: 1 << 20, capacityPoints: 1 << 22 });
    const metrics = { loss: 0, lr: 0, acc: 0, grad: 0 };
    const started = performance.now();
    for (let step = 0; step < 250_000; step++) {
      metrics.loss = step;
      buffer.append(0, step, metrics);
    }
    const ms = performance.now() - started;
    expect(buffer.appended).toBe(1_000_000);
    // One million points well under a second even on a slow CI machine (typically ~10 ms).
    expect(ms).toBeLessThan(1000);
  });
});
