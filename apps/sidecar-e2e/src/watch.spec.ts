// The watch streams against the real sidecar process: a stream cut by the network resumes from the
// last seq with no gap and no duplicate; the job list follows jobs as they appear and end; a subscriber
// that never reads keeps the sidecar's memory bounded while a million points are ingested; and
// GetMetricSeries answers a long series with a few thousand buckets.
import { readFile } from 'node:fs/promises';
import { startTcpFaultProxy } from '@training-callbacks/fault-injection';
import { createClient, RpcError, Status } from '@training-callbacks/grpc-adapter';
import {
  JobStatus,
  TrainingCallbacks as Service,
  TaskType,
  TrainingOutcome,
  type WatchJobEvent,
} from '@training-callbacks/proto';
import { type SidecarProcess, startSidecarProcess } from '@training-callbacks/sidecar/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type Methods = typeof Service extends { method: infer M } ? M : never;
type Client = ReturnType<typeof createClient<Methods>>;

let sidecar: SidecarProcess;
let client: Client;

beforeAll(async () => {
  sidecar = await startSidecarProcess({ args: ['--watch-keepalive', '0.3', '--quiet'], timeoutMs: 60_000 });
  client = createClient(Service, sidecar.address);
});

afterAll(async () => {
  client?.close();
  await sidecar?.[Symbol.asyncDispose]();
});

async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)![1]) / 1024;
}

/** `n` steps from `first` of one metric, as one block. */
function block(epoch: number, first: number, n: number, name = 'loss') {
  return {
    epoch,
    names: [name],
    steps: Array.from({ length: n }, (_, i) => BigInt(first + i)),
    values: Array.from({ length: n }, (_, i) => (first + i) / 1e6),
  };
}

const BLOCKS = 1000;
const STEPS = 1000;

/** 1 M points of "loss" at steps 0 … 999 999 (value step / 1e6), in 1000 blocks. */
async function ingestMillion(jobId: string): Promise<void> {
  for (let i = 0; i < BLOCKS; i += 50) {
    await client.reportBatchMetrics([
      { jobId, blocks: Array.from({ length: 50 }, (_, b) => block(0, (i + b) * STEPS, STEPS)) },
    ]);
  }
}

async function begin(jobId: string): Promise<void> {
  await client.beginTraining({ jobId, taskType: TaskType.IMAGE_CLASSIFICATION, framework: 'timm' });
}

function eventName(event: WatchJobEvent): string {
  const e = event.event;
  switch (e.case) {
    case 'epoch':
      return `epoch:${e.value.epoch}`;
    case 'batch':
      return `batch:${e.value.steps[0]}`;
    case 'artifact':
      return `artifact:${e.value.artifactPath}`;
    default:
      return e.case ?? 'none';
  }
}

describe('WatchJob', () => {
  it('resumes after a dropped connection from the last seq: no gap, no duplicate', async () => {
    const jobId = 'watch-resume';
    await begin(jobId);
    await using proxy = await startTcpFaultProxy(sidecar.address);
    const viewer = createClient(Service, proxy.address);
    const EPOCHS = 12;
    const BLOCKS_PER_EPOCH = 5;
    const writer = (async () => {
      for (let epoch = 0; epoch < EPOCHS; epoch++) {
        await client.reportBatchMetrics([
          {
            jobId,
            blocks: Array.from({ length: BLOCKS_PER_EPOCH }, (_, b) =>
              block(epoch, (epoch * BLOCKS_PER_EPOCH + b) * 100, 100),
            ),
          },
        ]);
        await client.endEpoch({
          jobId,
          epoch,
          metrics: { accuracy: epoch / EPOCHS, loss: 1 - epoch / EPOCHS },
        });
        await new Promise((r) => setTimeout(r, 40));
      }
      await client.endTraining({ jobId, outcome: TrainingOutcome.COMPLETED });
    })();

    const seen: string[] = [];
    const seqs: bigint[] = [];
    const epochJobs: number[] = [];
    let lastSeq = 0n;
    let drops = 0;
    let ended = false;
    try {
      while (!ended) {
        try {
          for await (const response of viewer.watchJob({ jobId, afterSeq: lastSeq })) {
            if (response.heartbeat) {
              expect(response.events).toEqual([]);
              expect(response.seq).toBeGreaterThanOrEqual(lastSeq);
              continue;
            }
            // Several events to a message, each with its seq; the message at its last event's.
            expect(response.seq).toBe(response.events.at(-1)!.seq);
            for (const event of response.events) {
              expect(event.seq).toBeGreaterThan(lastSeq);
              lastSeq = event.seq;
              seqs.push(event.seq);
              seen.push(eventName(event));
              if (event.event.case === 'epoch') epochJobs.push(event.epochJob?.epochsReported ?? -1);
              if (event.event.case === 'job' && event.event.value.status === JobStatus.COMPLETED)
                ended = true;
            }
            if (ended) break;
            // Cut the connection twice, mid-stream, while the writer keeps writing.
            if ((seen.length >= 15 && drops === 0) || (seen.length >= 40 && drops === 1)) {
              drops++;
              proxy.dropConnections();
            }
          }
        } catch (error) {
          // grpc-js reports a connection cut under a running stream as UNAVAILABLE or, when the
          // session ends with an error, INTERNAL ("Received RST_STREAM …"): either way, resume.
          if (!(error instanceof RpcError)) throw error;
          expect([Status.UNAVAILABLE, Status.INTERNAL]).toContain(error.code);
        }
      }
    } finally {
      viewer.close();
      await writer;
    }
    expect(drops).toBe(2);
    // Each epoch and each block exactly once (each was written once); the job events coalesce.
    const items = seen.filter((name) => name !== 'job');
    // Every epoch event carries the job as it is when sent: at least as new as that epoch (a lagging
    // viewer gets later, coalesced state), never older than an earlier event's, and whole at the end.
    expect(epochJobs).toHaveLength(EPOCHS);
    epochJobs.forEach((reported, e) => {
      expect(reported).toBeGreaterThanOrEqual(e + 1);
      if (e > 0) expect(reported).toBeGreaterThanOrEqual(epochJobs[e - 1]!);
    });
    expect(epochJobs.at(-1)).toBe(EPOCHS);
    const expected = [
      ...Array.from({ length: EPOCHS }, (_, e) => `epoch:${e}`),
      ...Array.from({ length: EPOCHS * BLOCKS_PER_EPOCH }, (_, b) => `batch:${b * 100}`),
    ];
    expect([...items].sort()).toEqual([...expected].sort());
    expect(new Set(seqs).size).toBe(seqs.length);
  });

  it('starts at the head with from_head, and refuses an unknown job with NOT_FOUND', async () => {
    const jobId = 'watch-head';
    await begin(jobId);
    await client.endEpoch({ jobId, epoch: 0, metrics: { accuracy: 0.1 } });
    const controller = new AbortController();
    const events: string[] = [];
    const stream = client.watchJob({ jobId, fromHead: true }, { signal: controller.signal });
    // The first message (a heartbeat) says the stream is at the head: epoch 1 is sent after it.
    const { promise: subscribed, resolve: established } = Promise.withResolvers<void>();
    const reading = (async () => {
      try {
        for await (const response of stream) {
          if (response.heartbeat) events.push('heartbeat');
          established();
          events.push(...response.events.map(eventName));
          if (response.events.some((e) => e.event.case === 'epoch')) controller.abort();
        }
      } catch (error) {
        expect(RpcError.from(error).code).toBe(Status.CANCELLED);
      }
      established();
    })();
    await subscribed;
    await client.endEpoch({ jobId, epoch: 1, metrics: { accuracy: 0.2 } });
    await reading;
    // The first heartbeat, then only what happened after: epoch 0 was never sent.
    expect(events[0]).toBe('heartbeat');
    expect(events.filter((e) => e.startsWith('epoch'))).toEqual(['epoch:1']);

    const unknown = client.watchJob({ jobId: 'no-such-job' });
    await expect(
      (async () => {
        for await (const _ of unknown) void _;
      })(),
    ).rejects.toMatchObject({ code: Status.NOT_FOUND });
  });

  it('sends heartbeats while nothing changes', async () => {
    const jobId = 'watch-idle';
    await begin(jobId);
    const controller = new AbortController();
    const started = Date.now();
    let heartbeats = 0;
    try {
      for await (const event of client.watchJob({ jobId, fromHead: true }, { signal: controller.signal })) {
        if (event.heartbeat) heartbeats++;
        if (heartbeats === 3) controller.abort();
      }
    } catch (error) {
      expect(RpcError.from(error).code).toBe(Status.CANCELLED);
    }
    // One at once, then one per --watch-keepalive (0.3 s).
    expect(heartbeats).toBe(3);
    expect(Date.now() - started).toBeGreaterThanOrEqual(550);
  });
});

describe('WatchJobs', () => {
  it('shows jobs as they appear, report epochs and end, each event the job as it is then', async () => {
    const controller = new AbortController();
    const head = client.watchJobs({ fromHead: true }, { signal: controller.signal });
    // The first message (a heartbeat) says the stream is at the head: the jobs begin after it.
    const { promise: subscribed, resolve: established } = Promise.withResolvers<void>();
    const seen: { jobId: string; status: JobStatus; epochs: number; best?: number }[] = [];
    const reading = (async () => {
      try {
        for await (const job of (async function* () {
          for await (const response of head) {
            established();
            for (const event of response.events) yield event.job!;
          }
        })()) {
          seen.push({
            jobId: job.jobId,
            status: job.status,
            epochs: job.epochsReported,
            ...(job.bestEpoch !== undefined && { best: job.bestEpoch }),
          });
          if (job.jobId === 'list-b' && job.status === JobStatus.FAILED) controller.abort();
        }
      } catch (error) {
        expect(RpcError.from(error).code).toBe(Status.CANCELLED);
      }
      established();
    })();
    await subscribed;
    await begin('list-a');
    await client.endEpoch({ jobId: 'list-a', epoch: 0, metrics: { accuracy: 0.7 } });
    await begin('list-b');
    await client.reportBatchMetrics([{ jobId: 'list-b', blocks: [block(0, 0, 10)] }]);
    await client.endTraining({ jobId: 'list-b', outcome: TrainingOutcome.FAILED, errorMessage: 'OOM' });
    await reading;
    const last = (id: string) => seen.filter((s) => s.jobId === id).at(-1);
    expect(seen[0]?.jobId).toBe('list-a');
    expect(last('list-a')).toEqual({ jobId: 'list-a', status: JobStatus.RUNNING, epochs: 1, best: 0 });
    expect(last('list-b')).toMatchObject({ jobId: 'list-b', status: JobStatus.FAILED });
    // Nothing from before the stream began.
    expect(seen.every((s) => s.jobId.startsWith('list-'))).toBe(true);
  });
});

describe('a subscriber that never reads', () => {
  it('keeps the sidecar memory bounded while 1 M points are ingested, and then receives all of them', async () => {
    const jobId = 'watch-stalled';
    await begin(jobId);
    const STALLED = 4;
    const viewers = Array.from({ length: STALLED }, () => createClient(Service, sidecar.address));
    // Calls started and never read: the HTTP/2 window fills, the sidecar stops pulling the feed.
    const streams = viewers.map((v) => v.watchJob({ jobId, afterSeq: 0n })[Symbol.asyncIterator]());
    // One event each, so every stream is established before the ingest.
    for (const s of streams) expect((await s.next()).value?.heartbeat).toBeDefined();
    // The same ingest once without subscribers first, so the growth measured below is theirs (SQLite's
    // cache and the V8 heap have grown to their working size by then).
    await begin(`${jobId}-warm-up`);
    const cold = await rssMiB(sidecar.child.pid!);
    await ingestMillion(`${jobId}-warm-up`);
    const before = await rssMiB(sidecar.child.pid!);
    await ingestMillion(jobId);
    await new Promise((r) => setTimeout(r, 500));
    const after = await rssMiB(sidecar.child.pid!);
    console.log(
      `sidecar RSS: ${cold.toFixed(0)} MiB → ${before.toFixed(0)} MiB after 1 M points without subscribers → ` +
        `${after.toFixed(0)} MiB after 1 M more with ${STALLED} subscribers that never read`,
    );
    // Queued in full, the streams would hold 4 × 1000 blocks of 1000 points as messages (~50 KiB of
    // JS objects each: ~200 MiB); held back, each holds a page of feed rows and a few messages.
    expect(after - before).toBeLessThan(100);

    // Nothing was dropped: the first subscriber, reading at last, gets every block.
    let points = 0;
    for (;;) {
      const { value, done } = await streams[0]!.next();
      if (done) break;
      for (const event of value.events)
        if (event.event.case === 'batch') points += event.event.value.steps.length;
      if (points === BLOCKS * STEPS) break;
    }
    expect(points).toBe(BLOCKS * STEPS);
    for (const v of viewers) v.close();
  }, 180_000);
});

describe('GetMetricSeries', () => {
  it('answers 1 M batch points with at most 2000 buckets, the last point kept, and a zoom at full resolution', async () => {
    const jobId = 'series-1m';
    await begin(jobId);
    await ingestMillion(jobId);
    const all = await client.getMetricSeries({ jobId, name: 'loss' });
    expect(all.name).toBe('train_loss'); // batch "loss" is stored normalised
    expect(all.totalPoints).toBe(1_000_000n);
    expect(all.buckets.length).toBeLessThanOrEqual(2000);
    expect(all.buckets.length).toBeGreaterThan(1000);
    expect(all.fullResolution).toBe(false);
    const final = all.buckets.at(-1)!;
    expect(final.lastStep).toBe(999_999n);
    expect(final.last).toBe(999_999 / 1e6);
    expect(all.buckets[0]!.min).toBe(0);

    const zoom = await client.getMetricSeries({ jobId, name: 'loss', minStep: 5000n, maxStep: 5999n });
    expect(zoom.fullResolution).toBe(true);
    expect(zoom.buckets.length).toBe(1000);
    expect(zoom.buckets[0]).toMatchObject({ firstStep: 5000n, lastStep: 5000n, last: 5000 / 1e6, count: 1n });

    await expect(client.getMetricSeries({ jobId, name: 'loss', maxPoints: 20_000 })).rejects.toMatchObject({
      code: Status.INVALID_ARGUMENT,
    });
    await expect(client.getMetricSeries({ jobId: 'nope', name: 'loss' })).rejects.toMatchObject({
      code: Status.NOT_FOUND,
    });
    const unknownName = await client.getMetricSeries({ jobId, name: 'no-such-metric' });
    expect(unknownName.totalPoints).toBe(0n);
  }, 60_000);
});
