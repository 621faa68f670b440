// Retries and bounds under real network failures: a real sidecar child process behind a real TCP
// proxy (@training-callbacks/fault-injection) that hangs up, stalls (blackhole), or swallows answers
// on command.

import { startTcpFaultProxy } from '@training-callbacks/fault-injection';
import { createClient, type RpcError, Status } from '@training-callbacks/grpc-adapter';
import { EndCause, JobStatus, TrainingCallbacks as Service } from '@training-callbacks/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SidecarProcess, startSidecarProcess } from './testing/sidecar.ts';
import {
  TrainingCallbacks,
  type TrainingCallbacksClient,
  type TrainingCallbacksOptions,
} from './training-callbacks.ts';

let sidecar: SidecarProcess;
let reader: TrainingCallbacksClient;
let jobCounter = 0;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--quiet'] });
  reader = createClient(Service, sidecar.address);
}, 30_000);

afterAll(async () => {
  reader?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

function callbacksVia(address: string, options: Partial<TrainingCallbacksOptions> = {}): TrainingCallbacks {
  return new TrainingCallbacks({
    address,
    jobId: `net-${process.pid}-${++jobCounter}`,
    taskType: 'image_classification',
    deadlineMs: 400,
    retry: { initialBackoffMs: 20, maxBackoffMs: 200, maxRetryTimeMs: 10_000 },
    ...options,
  });
}

async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!condition()) {
    if (Date.now() - started > timeoutMs) throw new Error('condition not reached in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function storedSteps(jobId: string): Promise<number[]> {
  const { blocks } = await reader.listBatchMetrics({ jobId });
  return blocks.flatMap((b) => b.steps.map(Number));
}

describe('retries over a failing network', { timeout: 60_000 }, () => {
  it('retries UNAVAILABLE with backoff until the sidecar is reachable; the awaited call does not wait for it', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address, { mode: 'hang-up' });
    await using callbacks = callbacksVia(proxy.address);
    const begun = await callbacks.onTrainBegin();
    // The answer did not come within answerWaitMs (deadlineMs): the trainer goes on, the report stays queued.
    expect(begun).toMatchObject({ delivered: false, pending: true, job: undefined });
    await until(() => callbacks.stats().retries >= 2);
    await proxy.setMode('pass');
    const flushed = await callbacks.flush();
    expect(flushed).toMatchObject({ complete: true, reportsDelivered: 1, lossSummary: '' });
    expect((await reader.getJob({ jobId: callbacks.jobId })).job?.jobId).toBe(callbacks.jobId);
    expect(proxy.accepted).toBeGreaterThan(1);
  });

  it('retries a call whose answer was lost (DEADLINE_EXCEEDED) and the write lands once', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = callbacksVia(proxy.address);
    await callbacks.onTrainBegin();
    for (let step = 0; step < 1000; step++) callbacks.onBatchEnd(step, { loss: step, lr: 0.1 });
    // The sidecar receives and commits the stream, but its answer never reaches the client.
    await proxy.setMode('swallow-responses');
    const flushed = callbacks.flush();
    await until(() => callbacks.stats().retries >= 1);
    await proxy.setMode('pass');
    await flushed;
    const stats = callbacks.stats();
    expect(stats.pointsFailed).toBe(0);
    expect(stats.pointsAccepted).toBe(2000);
    // The resent blocks replaced the committed ones: every step once.
    expect(await storedSteps(callbacks.jobId)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('retries a stalled epoch report and returns its verdicts to a caller that waits for them', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = callbacksVia(proxy.address, { answerWaitMs: 60_000 });
    await callbacks.onTrainBegin();
    await proxy.setMode('blackhole');
    const ended = callbacks.onEpochEnd(0, { accuracy: 0.9 });
    await until(() => callbacks.stats().retries >= 1);
    await proxy.setMode('pass');
    expect((await ended).isBest).toBe(true);
  });

  it('retries reports and batch streams past the retry budget until acknowledged', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    const errors: RpcError[] = [];
    await using callbacks = callbacksVia(proxy.address, {
      retry: { initialBackoffMs: 20, maxBackoffMs: 50, maxRetryTimeMs: 300 },
      onBackgroundError: (e) => errors.push(e),
      onWarning: () => {},
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('hang-up');
    for (let step = 0; step < 100; step++) callbacks.onBatchEnd(step, { loss: step });
    const epoch = await callbacks.onEpochBegin(1);
    expect(epoch).toMatchObject({ delivered: false, pending: true });
    // Both are still being retried, well past the 300 ms budget.
    await new Promise((r) => setTimeout(r, 600));
    expect(callbacks.stats()).toMatchObject({
      pointsFailed: 0,
      failedFlushes: 0,
      pointsInFlight: 100,
      reportsPending: 1,
    });
    await proxy.setMode('pass');
    const flushed = await callbacks.flush();
    expect(flushed).toMatchObject({
      complete: true,
      pointsDelivered: 100,
      reportsDelivered: 2,
      lossSummary: '',
    });
    expect(errors).toHaveLength(0);
    expect(await storedSteps(callbacks.jobId)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });

  it('strict: an awaited call gives up after the retry budget and rejects; batch streams go on', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = callbacksVia(proxy.address, {
      strict: true,
      retry: { initialBackoffMs: 20, maxBackoffMs: 50, maxRetryTimeMs: 300 },
      onWarning: () => {},
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('hang-up');
    for (let step = 0; step < 100; step++) callbacks.onBatchEnd(step, { loss: step });
    const epoch = await callbacks.onEpochBegin(1).catch((e: unknown) => e);
    expect((epoch as RpcError).code).toBe(Status.UNAVAILABLE);
    expect(callbacks.losses().failedWrites).toBe(1);
    expect(callbacks.stats()).toMatchObject({ pointsFailed: 0, pointsInFlight: 100 });
    await proxy.setMode('pass');
    await callbacks.flush();
    expect(callbacks.stats()).toMatchObject({ pointsAccepted: 100, pointsFailed: 0 });
  });

  it("gives up what is unacknowledged at onTrainEnd's flush deadline and ends the job with it counted", async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = callbacksVia(proxy.address, {
      deadlineMs: 2000,
      onWarning: () => {},
      channelOptions: { 'grpc.max_reconnect_backoff_ms': 200 },
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('hang-up');
    void callbacks.onEpochEnd(0, { accuracy: 0.5 });
    callbacks.onBatchEnd(0, { loss: 1 });
    // 8 s: the reports are given up at 6 s (8 s less EndTraining's reserve of deadlineMs).
    const ending = callbacks.onTrainEnd({}, { timeoutMs: 8000 });
    await until(() => callbacks.stats().reportsLost >= 1, 30_000);
    await proxy.setMode('pass');
    const ended = await ending;
    expect(ended.delivered).toBe(true);
    expect(ended.losses.failedWrites).toBe(1);
    expect(ended.losses.droppedPoints).toBe(1);
    expect(ended.losses.reasons.join('\n')).toMatch(
      /EndEpoch 0: DEADLINE_EXCEEDED: not acknowledged by onTrainEnd's flush deadline/,
    );
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.epochsReported).toBe(0);
    expect(job?.clientLosses).toMatchObject({ failedWrites: 1n, droppedPoints: 1n });
  }, 60_000);

  it('bounds the report queue: a report over the bound is lost and counted, never silently', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    const warnings: string[] = [];
    await using callbacks = callbacksVia(proxy.address, {
      maxQueuedReports: 3,
      onWarning: (w) => warnings.push(w),
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('hang-up');
    const epochs = [0, 1, 2, 3, 4].map((e) => callbacks.onEpochBegin(e));
    const lost = await Promise.all([epochs[3], epochs[4]]);
    for (const result of lost) expect(result?.error?.code).toBe(Status.RESOURCE_EXHAUSTED);
    expect(warnings.join('\n')).toMatch(/report queue is full \(3 reports/);
    await proxy.setMode('pass');
    const ended = await callbacks.onTrainEnd();
    expect(ended).toMatchObject({ delivered: true, reportsDelivered: 5 });
    expect(ended.losses.failedWrites).toBe(2);
    const { job } = await reader.getJob({ jobId: callbacks.jobId });
    expect(job?.clientLosses?.failedWrites).toBe(2n);
  });
});

describe('a partition longer than the lease', () => {
  it('the job is declared lost, then the heartbeats of the same session revive it, and it ends COMPLETED', async () => {
    await using leased = await startSidecarProcess({ args: ['--quiet', '--trainer-lease', '1'] });
    const peer = createClient(Service, leased.address);
    try {
      await using proxy = await startTcpFaultProxy(leased.address);
      await using callbacks = callbacksVia(proxy.address, {
        onWarning: () => {},
        channelOptions: { 'grpc.max_reconnect_backoff_ms': 200 },
      });
      expect((await callbacks.onTrainBegin()).delivered).toBe(true);
      await proxy.setMode('blackhole');
      const status = async () => (await peer.getJob({ jobId: callbacks.jobId })).job;
      let job = await status();
      for (const t = Date.now(); job?.status === JobStatus.RUNNING && Date.now() - t < 30_000; ) {
        await new Promise((r) => setTimeout(r, 100));
        job = await status();
      }
      expect(job).toMatchObject({ status: JobStatus.FAILED, endCause: EndCause.LEASE_EXPIRED });
      await proxy.setMode('pass');
      for (const t = Date.now(); job?.status !== JobStatus.RUNNING && Date.now() - t < 30_000; ) {
        await new Promise((r) => setTimeout(r, 100));
        job = await status();
      }
      expect(job?.status).toBe(JobStatus.RUNNING);
      const ended = await callbacks.onTrainEnd();
      expect(ended.job).toMatchObject({ status: JobStatus.COMPLETED, endCause: EndCause.REPORTED });
    } finally {
      peer.close();
    }
  }, 120_000);
});

describe('the batch buffer under a stalled sidecar', () => {
  it('stays bounded: drops the newest points, counts them, never blocks or throws', async () => {
    await using proxy = await startTcpFaultProxy(sidecar.address);
    await using callbacks = callbacksVia(proxy.address, {
      batch: { bufferPoints: 1000, flushPoints: 100, flushIntervalMs: 20 },
    });
    await callbacks.onTrainBegin();
    await proxy.setMode('blackhole');
    const started = performance.now();
    for (let step = 0; step < 5000; step++) callbacks.onBatchEnd(step, { loss: step });
    expect(performance.now() - started).toBeLessThan(200);
    const stats = callbacks.stats();
    expect(stats.pointsBuffered).toBe(1000);
    expect(stats.pointsDropped).toBe(4000);
    await new Promise((r) => setTimeout(r, 100));
    await proxy.setMode('pass');
    await callbacks.flush();
    expect(callbacks.stats().pointsAccepted).toBe(1000);
    expect(await storedSteps(callbacks.jobId)).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('never throws into the caller, even for a metrics object that throws', () => {
    const callbacks = callbacksVia('127.0.0.1:1');
    const hostile = new Proxy(
      {},
      {
        ownKeys: () => {
          throw new Error('hostile');
        },
      },
    );
    expect(() => callbacks.onBatchEnd(0, hostile as Record<string, number>)).not.toThrow();
    expect(() => callbacks.onBatchEnd(Number.NaN, { loss: 1 })).not.toThrow();
    expect(callbacks.stats().stepsInvalid).toBe(1);
    callbacks.close();
  });

  it('flush() before onTrainBegin is not complete (strict: rejects with FAILED_PRECONDITION)', async () => {
    const callbacks = callbacksVia('127.0.0.1:1');
    callbacks.onBatchEnd(0, { loss: 1 });
    expect((await callbacks.flush()).complete).toBe(false);
    callbacks.close();
    const strict = callbacksVia('127.0.0.1:1', { strict: true });
    strict.onBatchEnd(0, { loss: 1 });
    const error = await strict.flush().catch((e: unknown) => e);
    expect((error as RpcError).code).toBe(Status.FAILED_PRECONDITION);
    strict.close();
  });
});
