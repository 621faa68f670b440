// Nothing is lost silently, against the real sidecar process: a permanent refusal (by the shared
// status table) is dropped at once and later reports go through; a transient outage is retried and
// delivered; what is lost reaches the job (Job.client_losses) and onTrainEnd's result.
import { startTcpFaultProxy } from '@training-callbacks/fault-injection';
import { createClient, Status } from '@training-callbacks/grpc-adapter';
import { JobStatus, TrainingCallbacks as Service } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarProcess, startSidecarProcess } from './testing/sidecar.ts';
import { TrainingCallbacks, type TrainingCallbacksClient } from './training-callbacks.ts';

let sidecar: SidecarProcess;
let reader: TrainingCallbacksClient;
let jobCounter = 0;

beforeAll(async () => {
  // A small message limit, so that an oversized report is easy to make.
  sidecar = await startSidecarProcess({ args: ['--quiet', '--max-message-bytes', '65536'] });
  reader = createClient(Service, sidecar.address);
}, 30_000);

afterAll(async () => {
  reader?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

const jobId = () => `losses-${process.pid}-${++jobCounter}`;

describe('a permanent refusal', () => {
  it('is dropped at once, counted, and later reports still go through', async () => {
    await using callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: jobId(),
      taskType: 'image_classification',
      batch: { flushPoints: 100, flushIntervalMs: 20 },
    });
    await callbacks.onTrainBegin();
    const huge: Record<string, number> = {};
    for (let i = 0; i < 4000; i++) huge[`custom_metric_${i}`] = i; // ~100 KB > 64 KiB
    const started = Date.now();
    const refused = await callbacks.onEpochEnd(0, huge);
    expect(refused).toMatchObject({ delivered: false, pending: false });
    expect(refused.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(callbacks.stats().retries).toBe(0); // not retried: retrying cannot help
    expect(Date.now() - started).toBeLessThan(2000);
    for (let step = 0; step < 50; step++) callbacks.onBatchEnd(step, { loss: 1 / (step + 1) });
    expect((await callbacks.onEpochEnd(1, { accuracy: 0.5 })).isBest).toBe(true);
    const ended = await callbacks.onTrainEnd({ accuracy: 0.5 });
    expect(ended.losses).toMatchObject({ failedWrites: 1, droppedPoints: 0, refusedPoints: 0 });
    expect(ended.lossSummary).toMatch(/^1 write failed \(EndEpoch 0 lost \(RESOURCE_EXHAUSTED: /);
    expect(ended.job?.status).toBe(JobStatus.COMPLETED);
    expect(ended.job?.clientLosses?.failedWrites).toBe(1n);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.clientLosses?.reasons[0]).toMatch(/^EndEpoch 0 lost \(RESOURCE_EXHAUSTED/);
    const { epochs } = await reader.listEpochs({ jobId: callbacks.jobId });
    expect(epochs.map((e) => e.epoch)).toEqual([1]);
    const { blocks } = await reader.listBatchMetrics({ jobId: callbacks.jobId });
    expect(blocks.flatMap((b) => b.steps).length).toBe(50);
  });

  it('of a batch stream counts its points as refused; the points after it are stored', async () => {
    await using callbacks = new TrainingCallbacks({
      address: sidecar.address,
      jobId: jobId(),
      taskType: 'image_classification',
      batch: { flushPoints: 20_000 }, // one block of 20 000 values: ~160 KB > 64 KiB
    });
    await callbacks.onTrainBegin();
    for (let step = 0; step < 20_000; step++) callbacks.onBatchEnd(step, { loss: 1 });
    const flushed = await callbacks.flush();
    expect(flushed).toMatchObject({ complete: true, pointsDelivered: 0 });
    expect(flushed.losses.refusedPoints).toBe(20_000);
    expect(flushed.lossSummary).toMatch(/RESOURCE_EXHAUSTED/);
    for (let step = 20_000; step < 20_010; step++) callbacks.onBatchEnd(step, { loss: 1 });
    const ended = await callbacks.onTrainEnd();
    expect(ended.losses).toMatchObject({ refusedPoints: 20_000, droppedPoints: 0, failedWrites: 0 });
    expect(ended.job?.clientLosses?.refusedPoints).toBe(20_000n);
    const { blocks } = await reader.listBatchMetrics({ jobId: callbacks.jobId });
    expect(blocks.flatMap((b) => b.steps.map(Number))).toEqual(
      Array.from({ length: 10 }, (_, i) => 20_000 + i),
    );
  });
});

describe('a transient outage', () => {
  it('is retried and delivered: nothing lost, the job is clean', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = new TrainingCallbacks({
      address: proxy.address,
      jobId: jobId(),
      taskType: 'image_classification',
      deadlineMs: 400,
      answerWaitMs: 30_000, // this test waits for the epoch's answer
      retry: { initialBackoffMs: 20, maxBackoffMs: 200 },
      batch: { flushPoints: 100, flushIntervalMs: 20 },
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('hang-up');
    for (let step = 0; step < 300; step++) callbacks.onBatchEnd(step, { loss: step });
    const epoch = callbacks.onEpochEnd(0, { accuracy: 0.9 });
    await new Promise((r) => setTimeout(r, 500));
    expect(callbacks.stats().retries).toBeGreaterThan(0);
    await proxy.setMode('pass');
    expect((await epoch).isBest).toBe(true);
    const ended = await callbacks.onTrainEnd();
    expect(ended.lossSummary).toBe('');
    expect(ended.job?.clientLosses).toBeUndefined();
    expect(callbacks.stats().pointsAccepted).toBe(300);
  });

  it("past onTrainEnd's flush deadline is given up, counted, and the end still goes out with the losses", async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = new TrainingCallbacks({
      address: proxy.address,
      jobId: jobId(),
      taskType: 'image_classification',
      deadlineMs: 1000,
      flushTimeoutMs: 3000,
      retry: { initialBackoffMs: 20, maxBackoffMs: 100 },
      batch: { flushPoints: 1000, flushIntervalMs: 20 },
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('blackhole'); // batch streams time out (DEADLINE_EXCEEDED: transient)
    for (let step = 0; step < 100; step++) callbacks.onBatchEnd(step, { loss: step });
    setTimeout(() => void proxy.setMode('pass'), 2100); // back after the give-up (3000 − 1000 ms)
    const started = Date.now();
    const ended = await callbacks.onTrainEnd();
    expect(Date.now() - started).toBeGreaterThanOrEqual(1900);
    expect(ended.losses.droppedPoints).toBe(100);
    expect(ended.lossSummary).toMatch(/^100 batch points dropped \(batch points /);
    expect(ended.job?.status).toBe(JobStatus.COMPLETED);
    expect(ended.job?.clientLosses?.droppedPoints).toBe(100n);
  });
});
