// The mirror's two threads with real components: a real SQLite file written by the main thread's store,
// the real sync thread (the bridge's worker and HTTP client, its outbox calls run by the main thread)
// and an MLflow URL that nobody listens on. The thread must read what the main store commits and have
// its failed attempts written back through the main thread; stop() must end it.
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { type NewJob, openStore, type Store, type StoredOutboxItem } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type RunningMirror, startMirror } from './mirror.ts';
import { outboxItems } from './outbox.ts';

let dir: string;
let dbPath: string;
let store: Store;
let mirror: RunningMirror | undefined;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mlflow-mirror-spec-'));
  dbPath = join(dir, 'training-callbacks.sqlite');
  store = await openStore({ dbPath });
});

afterEach(async () => {
  await mirror?.stop(0);
  mirror = undefined;
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A loopback port nobody listens on (taken, then released). */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function newJob(jobId: string): NewJob {
  return sampleJob(jobId, { params: { lr: '0.001' } });
}

/** Writes a job and its first outbox entries the way the RPC handlers do (one transaction each). */
async function beginJob(jobId: string): Promise<void> {
  const now = Date.now();
  await store.createOrGetJob(newJob(jobId), {
    outbox: [
      outboxItems.jobBegun({
        task: 'image_classification',
        framework: 'timm',
        modelName: 'resnet50',
        params: { lr: '0.001' },
        startTimeMs: now,
      }),
    ],
  });
  await store.saveEpoch({
    jobId,
    epoch: 0,
    metrics: { loss: 0.5, accuracy: Number.NaN },
    columns: { loss: 0.5 },
    timestamp: new Date(now),
    best: null,
    outbox: [outboxItems.epochMetrics(0, { loss: 0.5, accuracy: Number.NaN }, now)],
  });
}

async function head(jobId: string): Promise<StoredOutboxItem> {
  const [item] = await store.peekOutbox(jobId, 1);
  if (!item) throw new Error(`no outbox entry for ${jobId}`);
  return item;
}

/** The outbox claims in the file, read with node:sqlite (independently of the store). */
function claims(): { job_id: string; claimed_by: string }[] {
  const db = new DatabaseSync(dbPath, { readOnly: true });
  try {
    return db.prepare('select job_id, claimed_by from outbox_claim order by job_id').all() as never;
  } finally {
    db.close();
  }
}

/** Polls until `check` passes (or fails the test after `timeoutMs`). */
async function eventually(check: () => Promise<void>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('startMirror', () => {
  it('reads the main store’s commits in its thread, writes its attempts through the main thread, and stops', async () => {
    await beginJob('before-start');
    const lines: string[] = [];
    const errors: string[] = [];
    mirror = await startMirror({
      config: { trackingUri: `http://127.0.0.1:${await deadPort()}`, requestTimeoutMs: 2_000 },
      store,
      retryHorizonMs: 3_600_000,
      maxBackoffMs: 200,
      log: (line) => lines.push(line),
      logError: (line) => errors.push(line),
    });

    // The thread found the entries committed before it started and failed to deliver them: the
    // failure (attempts, last error, next attempt) was written by the main thread's store.
    await eventually(async () => {
      const item = await head('before-start');
      expect(item.kind).toBe('job_begun');
      expect(item.attempts).toBeGreaterThanOrEqual(2);
      expect(item.lastError).toBeTruthy();
      expect(item.parkedError).toBeNull();
    });
    // Entries stay in order behind their failing head.
    expect((await store.peekOutbox('before-start', 10)).map((i) => [i.kind, i.attempts])).toEqual([
      ['job_begun', expect.any(Number)],
      ['epoch_metrics', 0],
    ]);

    // Entries committed while it runs are read too (a notify() after the commit, as the RPCs do).
    await beginJob('after-start');
    mirror.notify();
    await eventually(async () => {
      const item = await head('after-start');
      expect(item.attempts).toBeGreaterThanOrEqual(1);
      expect(item.lastError).toBeTruthy();
    });
    expect(lines.some((line) => line.includes('[before-start] MLflow:') && line.includes('retrying'))).toBe(
      true,
    );
    expect(errors).toEqual([]);
    const sync = await mirror.sync(['before-start', 'after-start', 'unknown']);
    expect(sync.get('before-start')).toMatchObject({ enabled: true, inSync: false, pendingItems: 2n });
    expect(sync.get('unknown')).toMatchObject({ enabled: true, inSync: true, pendingItems: 0n });

    // stop() ends the thread: well within its grace (the thread answered), and nothing is attempted after.
    const started = Date.now();
    await mirror.stop(10_000);
    mirror = undefined;
    expect(Date.now() - started).toBeLessThan(5_000);
    const attemptsAtStop = [(await head('before-start')).attempts, (await head('after-start')).attempts];
    await new Promise((resolve) => setTimeout(resolve, 1_000)); // five times the longest backoff
    expect([(await head('before-start')).attempts, (await head('after-start')).attempts]).toEqual(
      attemptsAtStop,
    );
    expect(await store.outboxStatus(['before-start'])).toHaveProperty('size', 1);
    expect(errors).toEqual([]);
  }, 30_000);

  it.runIf(existsSync('/proc/thread-self'))(
    'runs the sync thread below the RPC thread’s CPU priority (Linux)',
    async () => {
      mirror = await startMirror({
        config: { trackingUri: `http://127.0.0.1:${await deadPort()}` },
        store,
        retryHorizonMs: 3_600_000,
        maxBackoffMs: 200,
        log: () => undefined,
        logError: () => undefined,
      });
      /** Thread name → nice value, of this process's threads. */
      const niceOf = new Map<string, number[]>();
      for (const tid of readdirSync('/proc/self/task')) {
        const comm = readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
        const nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        niceOf.set(comm, [...(niceOf.get(comm) ?? []), nice]);
      }
      expect(niceOf.get('mlflow-sync')).toEqual([10]);
      expect(niceOf.get(readFileSync('/proc/thread-self/comm', 'utf8').trim())?.[0]).toBe(0);
    },
  );

  it('drains a job only under its claim: a second mirror on the same file waits, and takes over at a stop', async () => {
    for (const jobId of ['c1', 'c2', 'c3']) await beginJob(jobId);
    const trackingUri = `http://127.0.0.1:${await deadPort()}`;
    const options = {
      config: { trackingUri, requestTimeoutMs: 2_000 },
      retryHorizonMs: 3_600_000,
      maxBackoffMs: 200,
      claimLeaseMs: 60_000,
      log: () => undefined,
      logError: () => undefined,
    };
    const first = await startMirror({ ...options, store });
    mirror = first;
    await eventually(async () => {
      expect(claims().map((c) => c.job_id)).toEqual(['c1', 'c2', 'c3']);
      for (const jobId of ['c1', 'c2', 'c3']) expect((await head(jobId)).attempts).toBeGreaterThanOrEqual(1);
    });
    const firstOwner = claims()[0]!.claimed_by;
    expect(new Set(claims().map((c) => c.claimed_by))).toEqual(new Set([firstOwner]));

    // A second sidecar's mirror on the same database: the jobs are held, it sends nothing of them.
    const other = await openStore({ dbPath });
    const second = await startMirror({ ...options, store: other });
    try {
      await new Promise((resolve) => setTimeout(resolve, 1_000)); // five times the longest backoff
      expect(new Set(claims().map((c) => c.claimed_by))).toEqual(new Set([firstOwner]));
      // Stopped, the first gives its claims up at once (not after the lease): the second takes over.
      await first.stop(10_000);
      mirror = undefined;
      const attempts = (await head('c1')).attempts;
      await eventually(async () => {
        expect(claims().map((c) => c.job_id)).toEqual(['c1', 'c2', 'c3']);
        expect(claims().every((c) => c.claimed_by !== firstOwner)).toBe(true);
        expect((await head('c1')).attempts).toBeGreaterThan(attempts);
      });
    } finally {
      await second.stop(10_000);
      await other.close();
    }
  }, 30_000);

  it('releases the claims of an earlier run at start when it holds the database alone', async () => {
    await beginJob('stale');
    // A sidecar killed while it held the job: its claim would hold for the whole lease.
    await store.claimOutboxJobs({ owner: 'killed-run', nowMs: Date.now(), leaseMs: 3_600_000 }, 10);
    expect(claims()).toEqual([{ job_id: 'stale', claimed_by: 'killed-run' }]);
    mirror = await startMirror({
      config: { trackingUri: `http://127.0.0.1:${await deadPort()}`, requestTimeoutMs: 2_000 },
      store,
      exclusiveDatabase: true,
      retryHorizonMs: 3_600_000,
      maxBackoffMs: 200,
      log: () => undefined,
      logError: () => undefined,
    });
    await eventually(async () => {
      expect((await head('stale')).attempts).toBeGreaterThanOrEqual(1);
      expect(claims().map((c) => c.claimed_by)).not.toContain('killed-run');
    });
  });

  it('mirrors an in-memory store too (the thread reads through the main thread, not the file)', async () => {
    await store.close();
    store = await openStore({ dbPath: ':memory:' });
    await beginJob('in-memory');
    mirror = await startMirror({
      config: { trackingUri: `http://127.0.0.1:${await deadPort()}`, requestTimeoutMs: 2_000 },
      store,
      retryHorizonMs: 3_600_000,
      maxBackoffMs: 200,
      log: () => undefined,
      logError: () => undefined,
    });
    await eventually(async () => {
      const item = await head('in-memory');
      expect(item.attempts).toBeGreaterThanOrEqual(1);
      expect(item.lastError).toBeTruthy();
    });
  });
});
