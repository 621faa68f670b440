import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type OutboxStatus, openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  createMlflowClient,
  JOB_ID_TAG,
  type MlflowClient,
  PARAM_CHANGED_TAG_PREFIX,
  type Run,
} from './client.ts';
import {
  type JobBegunPayload,
  type MlflowOutbox,
  type NewOutboxItem,
  type OutboxItem,
  outboxItems,
} from './outbox.ts';
import { startHttpFaultInjector, startTcpFaultProxy } from './testing/index.ts';
import {
  createSyncWorker,
  METRIC_NAME_TAG_PREFIX,
  type SyncEvent,
  type SyncWorkerOptions,
} from './worker.ts';

const url = inject('mlflowUrl');
let reader: MlflowClient;
let dir: string;
const uid = () => randomUUID().slice(0, 8);

const stores: Store[] = [];

beforeAll(async () => {
  reader = createMlflowClient({ trackingUri: url });
  dir = await mkdtemp(join(tmpdir(), 'bridge-worker-'));
});
afterAll(async () => {
  await reader.close();
  for (const store of stores) await store.close();
  await rm(dir, { recursive: true, force: true });
});

/**
 * The durable outbox the worker drains in the sidecar: the real store on a SQLite file of its own
 * (a fresh one: a restarted sidecar's is another store), seen through the bridge's interface. Jobs are
 * created on first use, as the sidecar's BeginTraining would.
 */
async function storeOutbox(): Promise<MlflowOutbox & { status(jobId: string): Promise<OutboxStatus> }> {
  const store = await openStore({ dbPath: join(dir, `outbox-${uid()}.sqlite`) });
  stores.push(store);
  const job = async (jobId: string) => {
    await store.createOrGetJob(sampleJob(jobId));
  };
  return {
    async enqueue(jobId, items, nowMs) {
      await job(jobId);
      await store.enqueueOutbox(jobId, items, nowMs);
    },
    dueJobs: (nowMs, limit) => store.outboxDueJobs(nowMs, limit),
    async peek(jobId, limit) {
      return (await store.peekOutbox(jobId, limit)).map((item) => item as unknown as OutboxItem);
    },
    complete: (ids) => store.completeOutbox(ids),
    reschedule: (id, update) => store.rescheduleOutboxItem(id, update),
    park: (id, error) => store.parkOutboxItem(id, error),
    retryNow: (jobId, nowMs) => store.retryOutboxNow(jobId, nowMs),
    nextDueAtMs: () => store.outboxNextDueAtMs(),
    getMirror: (jobId) => store.getMirrorState(jobId),
    async saveMirror(jobId, mirror) {
      await job(jobId);
      await store.saveMirrorState(jobId, mirror);
    },
    /** The job's outbox as the store reports it (nothing pending when it has no entries). */
    async status(jobId) {
      return (await store.outboxStatus([jobId])).get(jobId) ?? { pendingItems: 0, parkedError: '' };
    },
  };
}

const OUTBOX_METHODS = [
  'enqueue',
  'dueJobs',
  'peek',
  'complete',
  'reschedule',
  'park',
  'retryNow',
  'nextDueAtMs',
  'getMirror',
  'saveMirror',
] as const satisfies ReadonlyArray<keyof MlflowOutbox>;

const fast: Partial<SyncWorkerOptions> = {
  backoff: { initialMs: 20, maxMs: 200 },
  pollIntervalMs: 50,
};

/** A job's worth of outbox items, and the points MLflow must end up with (key → "step@timestamp=value"). */
function scenario(
  opts: {
    epochs?: number;
    batchSteps?: number;
    outcome?: 'FINISHED' | 'FAILED' | 'KILLED';
    artifact?: string;
  } = {},
) {
  const epochs = opts.epochs ?? 3;
  const batchSteps = opts.batchSteps ?? 400;
  const t0 = 1_718_000_000_000;
  const items: NewOutboxItem[] = [
    outboxItems.jobBegun({
      task: 'object_detection',
      framework: 'ultralytics',
      modelName: 'yolo11n',
      params: { epochs: String(epochs), lr0: '0.01', 'optimizer(name)': 'SGD' },
      startTimeMs: t0,
    }),
  ];
  const expected = new Map<string, string[]>();
  const expect1 = (key: string, step: number, ts: number, v: number) => {
    const list = expected.get(key) ?? [];
    list.push(`${step}@${ts}=${Number.isNaN(v) ? 'NaN' : v}`);
    expected.set(key, list);
  };
  let globalStep = 0;
  for (let e = 0; e < epochs; e++) {
    const ts = t0 + e * 60_000;
    const names = ['train/loss', 'lr']; // batch-level
    const steps = Array.from({ length: batchSteps }, () => globalStep++);
    const values = steps.flatMap((s) => [1 / (s + 1), 0.01]);
    items.push(outboxItems.batchMetrics(e, names, steps, values, ts + 1));
    steps.forEach((s, i) => {
      expect1('train/loss', s, ts + 1, values[i * 2]!);
      expect1('lr', s, ts + 1, values[i * 2 + 1]!);
    });
    const metrics = {
      'metrics/mAP50(B)': 0.1 * (e + 1),
      'metrics/mAP50B': 0.5,
      'val/loss': e === 1 ? Number.NaN : 2 - e,
    };
    items.push(outboxItems.epochMetrics(e, metrics, ts + 2));
    expect1('metrics/mAP50B', e, ts + 2, metrics['metrics/mAP50(B)']);
    expect1('metrics/mAP50B_2', e, ts + 2, 0.5);
    expect1('val/loss', e, ts + 2, metrics['val/loss']);
  }
  const endTs = t0 + epochs * 60_000;
  if (opts.artifact) items.push(outboxItems.artifact(opts.artifact, 'weights/best.pt'));
  items.push(outboxItems.finalMetrics({ 'metrics/mAP50(B)': 0.9, accuracy: 0.8 }, epochs - 1, endTs));
  expect1('final_metrics/mAP50B', epochs - 1, endTs, 0.9);
  expect1('final_accuracy', epochs - 1, endTs, 0.8);
  const outcome = opts.outcome ?? 'FINISHED';
  items.push(
    outboxItems.jobEnded(outcome, endTs + 5, outcome === 'FAILED' ? 'CUDA out of memory' : undefined),
  );
  return { items, expected, endTimeMs: endTs + 5, outcome };
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function runOf(jobId: string): Promise<Run> {
  const e = await reader.getExperimentByName(`job_${jobId}`);
  expect(e, `experiment job_${jobId}`).toBeDefined();
  const runs = await reader.searchRuns({ experimentIds: [e!.experimentId], runViewType: 'ALL' });
  expect(runs, 'exactly one run per job').toHaveLength(1);
  return runs[0]!;
}

/** Reads every metric history back and compares with `expected`: every point exactly once. */
async function expectExactlyOnce(run: Run, expected: Map<string, string[]>) {
  const keys = new Set(run.data.metrics.map((m) => m.key));
  expect([...keys].sort()).toEqual([...expected.keys()].sort());
  for (const [key, want] of expected) {
    const got = (await reader.getMetricHistory(run.info.runId, key)).map(
      (m) => `${m.step}@${m.timestamp}=${Number.isNaN(m.value) ? 'NaN' : m.value}`,
    );
    expect(got.sort(), key).toEqual([...want].sort());
  }
}

describe('sync worker against a real MLflow', () => {
  it('mirrors a whole job: experiment, run, tags, params, histories, final metrics, artifact, status', async () => {
    const jobId = `full-${uid()}`;
    const content = randomBytes(2 * 1024 * 1024 + 3);
    const file = join(dir, `${jobId}.pt`);
    await writeFile(file, content);
    const { items, expected, endTimeMs } = scenario({ artifact: file });
    const outbox = await storeOutbox();
    await outbox.enqueue(jobId, items, Date.now());
    const events: SyncEvent[] = [];
    const client = createMlflowClient({ trackingUri: url });
    const worker = createSyncWorker({ client, outbox, ...fast, onEvent: (e) => events.push(e) });
    expect(await outbox.status(jobId)).toMatchObject({ pendingItems: items.length, parkedError: '' });
    await worker.runUntilIdle();
    await client.close();
    expect(await outbox.status(jobId)).toEqual({ pendingItems: 0, parkedError: '' });

    const run = await runOf(jobId);
    expect(run.info).toMatchObject({ status: 'FINISHED', endTime: endTimeMs, startTime: 1_718_000_000_000 });
    expect(run.data.tags).toMatchObject({
      [JOB_ID_TAG]: jobId,
      task: 'object_detection',
      framework: 'ultralytics',
      model: 'yolo11n',
      [`${METRIC_NAME_TAG_PREFIX}metrics/mAP50B`]: 'metrics/mAP50(B)',
      [`${METRIC_NAME_TAG_PREFIX}metrics/mAP50B_2`]: 'metrics/mAP50B',
      [`${METRIC_NAME_TAG_PREFIX}final_metrics/mAP50B`]: 'final_metrics/mAP50(B)',
    });
    expect(run.data.params).toEqual({ epochs: '3', lr0: '0.01', optimizername: 'SGD' });
    await expectExactlyOnce(run, expected);
    expect((await reader.downloadArtifact(run.info.artifactUri, 'weights/best.pt')).equals(content)).toBe(
      true,
    );
    expect(await outbox.getMirror(jobId)).toMatchObject({
      runId: run.info.runId,
      metricKeys: { 'metrics/mAP50(B)': 'metrics/mAP50B', 'metrics/mAP50B': 'metrics/mAP50B_2' },
    });
    const progress = events.filter((e) => e.type === 'artifact_progress');
    expect(progress.at(-1)).toMatchObject({ sentBytes: content.length, totalBytes: content.length });
    expect(events.filter((e) => e.type === 'warning').map((e) => (e as { message: string }).message)).toEqual(
      [
        expect.stringContaining(
          '"metrics/mAP50B" would be "metrics/mAP50B" in MLflow, taken by "metrics/mAP50(B)"',
        ),
      ],
    );
    // Consecutive metric items are folded: far fewer deliveries than items.
    expect(events.filter((e) => e.type === 'delivered').length).toBeLessThan(items.length);
  });

  it.each(['FAILED', 'KILLED'] as const)('ends a %s job with that status and end time', async (outcome) => {
    const jobId = `${outcome.toLowerCase()}-${uid()}`;
    const { items, expected, endTimeMs } = scenario({ epochs: 1, batchSteps: 5, outcome });
    const outbox = await storeOutbox();
    await outbox.enqueue(jobId, items, Date.now());
    const client = createMlflowClient({ trackingUri: url });
    await createSyncWorker({ client, outbox, ...fast }).runUntilIdle();
    await client.close();
    const run = await runOf(jobId);
    expect(run.info).toMatchObject({ status: outcome, endTime: endTimeMs });
    if (outcome === 'FAILED') expect(run.data.tags['training_callbacks.error']).toBe('CUDA out of memory');
    await expectExactlyOnce(run, expected);
  });

  it('a resumed job continues its run; a changed param is kept as a tag', async () => {
    const jobId = `resume-${uid()}`;
    const outbox = await storeOutbox();
    const client = createMlflowClient({ trackingUri: url });
    const worker = createSyncWorker({ client, outbox, ...fast });
    const begun = (lr0: string) =>
      outboxItems.jobBegun({ task: 't', framework: 'f', modelName: 'm', params: { lr0 }, startTimeMs: 1000 });
    await outbox.enqueue(
      jobId,
      [begun('0.01'), outboxItems.epochMetrics(0, { acc: 0.5 }, 2000), outboxItems.jobEnded('KILLED', 3000)],
      0,
    );
    await worker.runUntilIdle();
    expect((await runOf(jobId)).info.status).toBe('KILLED');
    await outbox.enqueue(jobId, [begun('0.02')], 0);
    await worker.runUntilIdle();
    expect((await runOf(jobId)).info.status).toBe('RUNNING');
    await outbox.enqueue(
      jobId,
      [outboxItems.epochMetrics(1, { acc: 0.6 }, 4000), outboxItems.jobEnded('FINISHED', 5000)],
      0,
    );
    await worker.runUntilIdle();
    await client.close();
    const run = await runOf(jobId);
    expect(run.info).toMatchObject({ status: 'FINISHED', endTime: 5000 });
    expect(run.data.params.lr0).toBe('0.01');
    expect(run.data.tags[`${PARAM_CHANGED_TAG_PREFIX}lr0`]).toBe('0.02');
    await expectExactlyOnce(run, new Map([['acc', ['0@2000=0.5', '1@4000=0.6']]]));
  });

  it('a crash after MLflow took a batch but before the outbox forgot it, with the run id lost: no duplicates', async () => {
    const jobId = `restart-${uid()}`;
    const { items, expected } = scenario({ epochs: 4, batchSteps: 300 });
    const base = await storeOutbox();
    await base.enqueue(jobId, items, Date.now());
    // The first process dies inside its third `complete` (MLflow has the data, the outbox still has the rows).
    let completes = 0;
    let dead = false;
    const crashing = {} as MlflowOutbox;
    for (const name of OUTBOX_METHODS) {
      (crashing as unknown as Record<string, unknown>)[name] = async (...args: unknown[]) => {
        if (dead) throw new Error('process is dead');
        if (name === 'complete' && ++completes === 3) {
          dead = true;
          throw new Error('SIGKILL');
        }
        return (base[name] as (...a: unknown[]) => Promise<unknown>).apply(base, args);
      };
    }
    const c1 = createMlflowClient({ trackingUri: url });
    const w1 = createSyncWorker({ client: c1, outbox: crashing, ...fast, maxPointsPerStep: 700 });
    await expect(w1.drainOnce()).rejects.toThrow('process is dead');
    await c1.close();
    const left = await base.peek(jobId, 1000);
    expect(left.length).toBeGreaterThan(2);
    expect(left.length).toBeLessThan(items.length - 2);
    // The restarted process has the rows but not the run id (as if that write was lost too).
    const restarted = await storeOutbox();
    await restarted.enqueue(jobId, [items[0]!], Date.now()); // job_begun again, as a resume would
    await restarted.enqueue(
      jobId,
      left.map((i) => ({ kind: i.kind, payload: i.payload }) as NewOutboxItem),
      Date.now(),
    );
    const c2 = createMlflowClient({ trackingUri: url });
    await createSyncWorker({ client: c2, outbox: restarted, ...fast }).runUntilIdle();
    await c2.close();
    await expectExactlyOnce(await runOf(jobId), expected);
  });
});

describe('a run that vanished from MLflow', () => {
  it('parks with what to do when the backend no longer knows the run; a re-mirror copies the job into one new run', async () => {
    const jobId = `vanished-${uid()}`;
    const { items, expected } = scenario({ epochs: 2, batchSteps: 20 });
    const outbox = await storeOutbox();
    const client = createMlflowClient({ trackingUri: url });
    const events: SyncEvent[] = [];
    const worker = createSyncWorker({
      client,
      outbox,
      ...fast,
      runGoneHint: 'call Remirror',
      onEvent: (e) => events.push(e),
    });
    // As after a backend reset: the job's stored run id is one this server never had.
    await reader.ensureExperiment(`job_${jobId}`);
    const ghost = 'f'.repeat(32);
    await outbox.saveMirror(jobId, { runId: ghost, artifactUri: `mlflow-artifacts:/1/${ghost}/artifacts` });
    await outbox.enqueue(jobId, items.slice(1), Date.now());
    await worker.runUntilIdle();
    const parked = (await outbox.status(jobId)).parkedError;
    expect(parked).toMatch(new RegExp(`RESOURCE_DOES_NOT_EXIST.*${ghost}.*the run is gone: call Remirror`));

    // The re-mirror (the sidecar's RemirrorMlflowRun): the old queue replaced by the whole job, the begin
    // flagged; a stale mirror state is ignored. Delivered twice (a crash after the run was created).
    const copy = [
      outboxItems.jobBegun({ ...(items[0]!.payload as JobBegunPayload), remirror: true }),
      ...items.slice(1),
    ];
    const fresh = await storeOutbox();
    await fresh.saveMirror(jobId, { runId: ghost });
    await fresh.enqueue(jobId, [copy[0]!], Date.now());
    const w2 = createSyncWorker({ client, outbox: fresh, ...fast, onEvent: (e) => events.push(e) });
    await w2.runUntilIdle();
    await fresh.saveMirror(jobId, { runId: ghost });
    await fresh.enqueue(jobId, copy, Date.now());
    await w2.runUntilIdle();
    await client.close();
    expect((await fresh.status(jobId)).pendingItems).toBe(0);
    const run = await runOf(jobId);
    expect(run.info.runId).toBe((await fresh.getMirror(jobId))!.runId);
    expect(run.info.status).toBe('FINISHED');
    await expectExactlyOnce(run, expected);
    const notes = events.flatMap((e) => (e.type === 'warning' ? [e.message] : []));
    expect(notes.some((m) => m.startsWith('re-mirror: created run'))).toBe(true);
    expect(notes.some((m) => m.includes('filling it up'))).toBe(true);
  });
});

describe('faults between the worker and MLflow', () => {
  it('MLflow unreachable for a while (refused, then reset connections), then back: every point once', async () => {
    await using proxy = await startTcpFaultProxy(url);
    const jobId = `tcp-${uid()}`;
    const { items, expected, endTimeMs } = scenario({ epochs: 4, batchSteps: 300 });
    const outbox = await storeOutbox();
    const client = createMlflowClient({ trackingUri: proxy.url, requestTimeoutMs: 2000 });
    const retries: SyncEvent[] = [];
    await using worker = createSyncWorker({
      client,
      outbox,
      ...fast,
      maxPointsPerStep: 500,
      onEvent: (e) => e.type === 'retry' && retries.push(e),
    });
    worker.start();
    await proxy.setMode('refuse');
    await outbox.enqueue(jobId, items.slice(0, 4), Date.now());
    worker.notify();
    await new Promise((r) => setTimeout(r, 600));
    expect((await outbox.peek(jobId, 1))[0]?.lastError).toMatch(/ECONNREFUSED/);
    await proxy.setMode('pass');
    await outbox.enqueue(jobId, items.slice(4), Date.now());
    worker.notify();
    // Reset connections repeatedly while it drains.
    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 150));
      await proxy.downFor(200, 'reset');
    }
    await worker.runUntilIdle({ timeoutMs: 60_000 });
    await worker.stop();
    await client.close();
    expect(retries.length).toBeGreaterThan(0);
    const run = await runOf(jobId);
    expect(run.info).toMatchObject({ status: 'FINISHED', endTime: endTimeMs });
    await expectExactlyOnce(run, expected);
  });

  it('catch-up starts within seconds of MLflow coming back, however long the backoff has grown', async () => {
    await using proxy = await startTcpFaultProxy(url);
    const jobId = `probe-${uid()}`;
    const { items, expected } = scenario({ epochs: 2, batchSteps: 50 });
    const outbox = await storeOutbox();
    const client = createMlflowClient({ trackingUri: proxy.url, requestTimeoutMs: 2000 });
    const events: SyncEvent[] = [];
    // Every retry waits a minute: without a probe nothing would move for 30–60 s after the outage.
    await using worker = createSyncWorker({
      client,
      outbox,
      backoff: { initialMs: 60_000, maxMs: 60_000 },
      pollIntervalMs: 50,
      probeIntervalMs: 1000,
      onEvent: (e) => events.push(e),
    });
    worker.start();
    await proxy.setMode('refuse');
    await outbox.enqueue(jobId, items, Date.now());
    worker.notify();
    await until(() => events.some((e) => e.type === 'retry'));
    const retry = events.find((e) => e.type === 'retry') as Extract<SyncEvent, { type: 'retry' }>;
    expect(retry.delayMs).toBeGreaterThanOrEqual(30_000);
    // Probes fail quietly while MLflow stays away: nothing is retried early.
    await new Promise((r) => setTimeout(r, 2500));
    expect(events.filter((e) => e.type === 'retry')).toHaveLength(1);
    await proxy.setMode('pass');
    const back = Date.now();
    await until(async () => (await outbox.status(jobId)).pendingItems === 0, 15_000);
    const catchUpMs = Date.now() - back;
    expect(catchUpMs).toBeLessThan(10_000);
    expect(events.some((e) => e.type === 'reachable' && e.jobs === 1)).toBe(true);
    await worker.stop();
    await client.close();
    await expectExactlyOnce(await runOf(jobId), expected);
  });

  it('500s, then 429 with Retry-After, then answers lost after MLflow applied them: every point once', async () => {
    await using proxy = await startHttpFaultInjector(url);
    const jobId = `http-${uid()}`;
    const { items, expected } = scenario({ epochs: 3, batchSteps: 300 });
    const outbox = await storeOutbox();
    await outbox.enqueue(jobId, items, Date.now());
    const client = createMlflowClient({ trackingUri: proxy.url });
    const retries: Array<Extract<SyncEvent, { type: 'retry' }>> = [];
    const worker = createSyncWorker({
      client,
      outbox,
      ...fast,
      maxPointsPerStep: 500,
      onEvent: (e) => e.type === 'retry' && retries.push(e),
    });
    proxy.add({ action: 500, times: 3 });
    proxy.add({ action: 429, retryAfterSeconds: 1, times: 2 });
    proxy.add({ match: /log-batch/, action: 'drop-after-forward', times: 3 });
    proxy.add({ match: /runs\/update/, action: 'drop-after-forward', times: 1 });
    const started = Date.now();
    await worker.runUntilIdle({ timeoutMs: 60_000 });
    await client.close();
    expect(proxy.stats().injected).toBe(9);
    // Retry-After: 1 was honoured (two of them, one after the other).
    expect(retries.filter((r) => r.delayMs === 1000)).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    const run = await runOf(jobId);
    expect(run.info.status).toBe('FINISHED');
    await expectExactlyOnce(run, expected);
  });

  it('parks a non-retryable failure with a clear error, and resumes after retryNow', async () => {
    await using proxy = await startHttpFaultInjector(url);
    const jobId = `park-${uid()}`;
    const { items, expected } = scenario({ epochs: 1, batchSteps: 10 });
    const outbox = await storeOutbox();
    await outbox.enqueue(jobId, items, Date.now());
    const client = createMlflowClient({ trackingUri: proxy.url });
    const worker = createSyncWorker({ client, outbox, ...fast });
    const remove = proxy.add({
      action: 403,
      body: 'Invalid Host header - possible DNS rebinding attack detected',
    });
    await worker.runUntilIdle();
    const parked = await outbox.status(jobId);
    expect(parked.pendingItems).toBe(items.length);
    expect(parked.parkedError).toMatch(/HTTP 403.*--allowed-hosts/);
    remove();
    expect(await outbox.retryNow(jobId, Date.now())).toBe(1);
    await worker.runUntilIdle();
    await client.close();
    expect((await outbox.status(jobId)).pendingItems).toBe(0);
    await expectExactlyOnce(await runOf(jobId), expected);
  });

  it('parks after the retry horizon', async () => {
    await using proxy = await startTcpFaultProxy(url);
    await proxy.setMode('refuse');
    const outbox = await storeOutbox();
    const jobId = `horizon-${uid()}`;
    await outbox.enqueue(jobId, scenario({ epochs: 1, batchSteps: 1 }).items, Date.now());
    const client = createMlflowClient({ trackingUri: proxy.url });
    const worker = createSyncWorker({ client, outbox, ...fast, retryHorizonMs: 300 });
    await worker.runUntilIdle();
    await client.close();
    const s = await outbox.status(jobId);
    expect(s.parkedError).toMatch(/gave up after \d+ attempts .*retry horizon.*ECONNREFUSED/);
  });
});
