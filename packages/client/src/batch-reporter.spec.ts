// The reporter's scheduling logic with an in-test `send` (the network paths are covered against the
// real sidecar in network-failures.spec.ts).
import { create } from '@bufbuild/protobuf';
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import { ReportBatchMetricsResponseSchema } from '@training-callbacks/proto';
import { describe, expect, it } from 'vitest';
import type { SealedBlock } from './batch-buffer.ts';
import { type BatchOptions, BatchReporter, DEFAULT_BATCH_OPTIONS } from './batch-reporter.ts';
import { LossLedger } from './losses.ts';

function ack(blocks: readonly SealedBlock[]) {
  let points = 0;
  for (const block of blocks) points += block.values.length;
  return create(ReportBatchMetricsResponseSchema, { acceptedPoints: BigInt(points) });
}

function reporterWith(
  options: Partial<BatchOptions>,
  send: (blocks: readonly SealedBlock[]) => Promise<ReturnType<typeof ack>>,
) {
  const errors: RpcError[] = [];
  const reporter = new BatchReporter(
    { ...DEFAULT_BATCH_OPTIONS, ...options },
    send,
    (e) => errors.push(e),
    new LossLedger(),
  );
  const report = (epoch: number, step: number, metrics: Record<string, number>) => {
    reporter.buffer.append(epoch, step, metrics);
    reporter.notify();
  };
  return { reporter, errors, report };
}

describe('BatchReporter', () => {
  it('starts a stream once flushPoints are pending, without waiting for the timer', async () => {
    const sent: number[] = [];
    const { reporter, report } = reporterWith(
      { flushPoints: 100, flushIntervalMs: 60_000 },
      async (blocks) => {
        sent.push(blocks.reduce((n, b) => n + b.values.length, 0));
        return ack(blocks);
      },
    );
    reporter.start();
    for (let step = 0; step < 99; step++) report(0, step, { loss: step });
    await new Promise((r) => setTimeout(r, 20));
    expect(sent).toEqual([]);
    report(0, 99, { loss: 99 });
    await new Promise((r) => setTimeout(r, 20));
    expect(sent).toEqual([100]);
    reporter.stop();
  });

  it('flushes pending points on the interval', async () => {
    let sent = 0;
    const { reporter, report } = reporterWith({ flushPoints: 1000, flushIntervalMs: 30 }, async (blocks) => {
      sent += blocks.length;
      return ack(blocks);
    });
    reporter.start();
    report(0, 0, { loss: 1 });
    await new Promise((r) => setTimeout(r, 100));
    expect(sent).toBe(1);
    expect(reporter.stats().pointsAccepted).toBe(1);
    reporter.stop();
  });

  it('keeps one stream in flight and batches what arrives meanwhile into the next', async () => {
    let inFlight = 0;
    let maxInFlight = 0;
    const sizes: number[] = [];
    const { reporter, report } = reporterWith(
      { flushPoints: 10, flushIntervalMs: 60_000 },
      async (blocks) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        sizes.push(blocks.reduce((n, b) => n + b.values.length, 0));
        await new Promise((r) => setTimeout(r, 20));
        inFlight--;
        return ack(blocks);
      },
    );
    reporter.start();
    for (let step = 0; step < 10; step++) report(0, step, { loss: step });
    await new Promise((r) => setImmediate(r));
    for (let step = 10; step < 500; step++) report(0, step, { loss: step });
    await reporter.flush();
    expect(maxInFlight).toBe(1);
    expect(sizes[0]).toBe(10);
    expect(sizes.reduce((a, b) => a + b, 0)).toBe(500);
    expect(sizes.length).toBeLessThan(5);
  });

  it('flush() waits for every earlier point, including those already in flight', async () => {
    const { reporter, report } = reporterWith({ flushPoints: 5, flushIntervalMs: 60_000 }, async (blocks) => {
      await new Promise((r) => setTimeout(r, 10));
      return ack(blocks);
    });
    reporter.start();
    for (let step = 0; step < 23; step++) report(0, step, { a: step });
    await reporter.flush();
    expect(reporter.stats()).toMatchObject({ pointsAccepted: 23, pointsPending: 0, pointsInFlight: 0 });
  });

  it('on a stream-level INVALID_ARGUMENT resends block by block so good blocks still land', async () => {
    const { reporter, errors, report } = reporterWith(
      { flushPoints: 1000, flushIntervalMs: 60_000 },
      async (blocks) => {
        if (blocks.some((b) => b.names.includes('bad')))
          throw new RpcError(Status.INVALID_ARGUMENT, 'bad block');
        return ack(blocks);
      },
    );
    reporter.start();
    report(0, 0, { good: 1 });
    report(0, 1, { bad: 1, x: 2 });
    report(0, 2, { other: 3 });
    const error = await reporter.flush().catch((e: unknown) => e);
    expect((error as RpcError).code).toBe(Status.INVALID_ARGUMENT);
    expect(reporter.stats()).toMatchObject({
      pointsAccepted: 2,
      pointsFailed: 2,
      failedFlushes: 1,
      flushes: 2,
    });
    expect(errors).toHaveLength(1);
  });

  it('fails the whole stream at once on a job-level refusal', async () => {
    let calls = 0;
    const { reporter, report } = reporterWith({ flushPoints: 1000, flushIntervalMs: 60_000 }, async () => {
      calls++;
      throw new RpcError(Status.FAILED_PRECONDITION, 'job ended');
    });
    reporter.start();
    report(0, 0, { a: 1 });
    report(1, 1, { a: 1 });
    await reporter.flush().catch(() => undefined);
    expect(calls).toBe(1);
    expect(reporter.stats().pointsFailed).toBe(2);
  });

  it('discard() drops what is pending, counts it, and settles flushes', async () => {
    const { reporter, report } = reporterWith(
      { flushPoints: 1000, flushIntervalMs: 60_000 },
      async (blocks) => ack(blocks),
    );
    report(0, 0, { a: 1, b: 2 });
    reporter.discard();
    expect(reporter.stats()).toMatchObject({ pointsDropped: 2, pointsPending: 0 });
    await reporter.flush();
  });
});
