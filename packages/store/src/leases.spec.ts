// Leases and verdicts in the store: every change is a conditional UPDATE, so two stores on one file
// (two sidecars sharing a database) agree — a job is ended once, a renewal wins over a late sweep,
// and only the trainer's own session revives a lost job.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type NewJob, openStore, type Store, StoreError, type TrainerRecord } from './index.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let dbPath: string;
const open: Store[] = [];

async function openTestStore(): Promise<Store> {
  const store = await openStore({ dbPath });
  open.push(store);
  return store;
}

const TRAINER: TrainerRecord = {
  pid: 4242,
  startTimeTicks: '123456789',
  hostname: 'gpu-7',
  bootId: '6f1c2a9e-5d0b-4c1e-9f8a-0123456789ab',
  sessionId: 'session-a',
};

function newJob(jobId: string, overrides: Partial<NewJob> = {}): NewJob {
  return sampleJob(jobId, { trainer: TRAINER, leaseMs: 60_000, ...overrides });
}

const verdict = (job: { lastSeenAtMs: number }) => ({
  reason: `lost: no heartbeat; last sign of life at ${new Date(job.lastSeenAtMs).toISOString()}`,
  outbox: [{ kind: 'job_ended', payload: { status: 'FAILED' } }],
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'store-leases-'));
  dbPath = join(dir, 'jobs.db');
});

afterEach(async () => {
  for (const store of open.splice(0)) await store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('leases', () => {
  it('starts a lease with the job and stores who the trainer is', async () => {
    const store = await openTestStore();
    const before = Date.now();
    const { job } = await store.createOrGetJob(newJob('a'));
    expect(job.trainer).toEqual(TRAINER);
    expect(job.endCause).toBeUndefined();
    expect(job.endReason).toBe('');
    expect(job.lastSeenAt!.getTime()).toBeGreaterThanOrEqual(before);
    expect(job.leaseExpiresAt!.getTime() - job.lastSeenAt!.getTime()).toBe(60_000);
  });

  it('renews a running job whatever the session, without a change-feed entry', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a'));
    const head = await store.headSeq();
    const nowMs = Date.now() + 30_000;
    const renewal = await store.renewLease('a', { nowMs, leaseMs: 60_000, sessionId: 'another' });
    expect(renewal).toMatchObject({ renewed: true, revived: false });
    expect(renewal.job.lastSeenAt!.getTime()).toBe(nowMs);
    expect(renewal.job.leaseExpiresAt!.getTime()).toBe(nowMs + 60_000);
    expect(await store.headSeq()).toBe(head);
    await expect(store.renewLease('nope', { nowMs, leaseMs: 1000 })).rejects.toThrow(StoreError);
  });

  it('ends only running jobs whose lease ran out, FAILED lease_expired, ended at the last sign of life', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('stale', { leaseMs: 1000 }));
    await store.createOrGetJob(newJob('fresh', { leaseMs: 600_000 }));
    await store.createOrGetJob(newJob('done', { leaseMs: 1000 }));
    await store.endJob({
      jobId: 'done',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    const stale = (await store.getJob('stale'))!;
    const head = await store.headSeq();

    const ended = await store.expireLeases(Date.now() + 5000, 100, verdict);

    expect(ended.map((j) => j.jobId)).toEqual(['stale']);
    const lost = ended[0]!;
    expect(lost).toMatchObject({ status: 'failed', endCause: 'lease_expired', errorMessage: '' });
    expect(lost.endReason).toBe(
      `lost: no heartbeat; last sign of life at ${stale.lastSeenAt!.toISOString()}`,
    );
    expect(lost.endedAt).toEqual(stale.lastSeenAt);
    expect(lost.leaseExpiresAt).toBeUndefined();
    expect((await store.getJob('fresh'))!.status).toBe('running');
    expect((await store.getJob('done'))!.endCause).toBe('reported');
    expect((await store.readChanges({ afterSeq: head, limit: 10 })).map((c) => [c.jobId, c.kind])).toEqual([
      ['stale', 'job'],
    ]);
    expect((await store.peekOutbox('stale', 10)).map((i) => i.kind)).toEqual(['job_ended']);
    // Nothing more to do: a second sweep ends nothing.
    expect(await store.expireLeases(Date.now() + 5000, 100, verdict)).toEqual([]);
  });

  it('leaves a job whose lease was renewed between the scan and the update', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a', { leaseMs: 1000 }));
    const sweepAt = Date.now() + 5000;
    const ended = await store.expireLeases(sweepAt, 100, async (job) => {
      // A heartbeat lands after the sweep saw the lease expired.
      await store.renewLease('a', { nowMs: sweepAt, leaseMs: 1000 });
      return verdict(job);
    });
    expect(ended).toEqual([]);
    expect((await store.getJob('a'))!.status).toBe('running');
    expect(await store.peekOutbox('a', 10)).toEqual([]);
  });

  it('two stores on one file (two sidecars) end the job exactly once', async () => {
    const first = await openTestStore();
    const second = await openTestStore();
    await first.createOrGetJob(newJob('a', { leaseMs: 1000 }));
    const sweepAt = Date.now() + 5000;
    let secondEnded: unknown[] = [];
    const firstEnded = await first.expireLeases(sweepAt, 100, async (job) => {
      // The other sidecar's sweep runs its whole course after this one's scan.
      secondEnded = await second.expireLeases(sweepAt, 100, verdict);
      return verdict(job);
    });
    expect([firstEnded.length, secondEnded.length]).toEqual([0, 1]);
    expect((await first.peekOutbox('a', 10)).map((i) => i.kind)).toEqual(['job_ended']);
  });

  it("revives a lost job on its own session's sign of life, and only on it", async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a', { leaseMs: 1000 }));
    await store.expireLeases(Date.now() + 5000, 100, verdict);
    const nowMs = Date.now() + 6000;
    const revive = (lostReason: string) => [{ kind: 'job_revived', payload: { lostReason } }];

    for (const sessionId of ['', 'session-b']) {
      const refused = await store.renewLease('a', { nowMs, leaseMs: 1000, sessionId, revive });
      expect(refused).toMatchObject({ renewed: false, revived: false });
      expect(refused.job).toMatchObject({ status: 'failed', endCause: 'lease_expired' });
    }
    const head = await store.headSeq();
    const revived = await store.renewLease('a', {
      nowMs,
      leaseMs: 1000,
      sessionId: 'session-a',
      revive,
    });
    expect(revived).toMatchObject({ renewed: true, revived: true });
    expect(revived.job).toMatchObject({ status: 'running', endReason: '' });
    expect(revived.job.endCause).toBeUndefined();
    expect(revived.job.endedAt).toBeUndefined();
    expect(revived.job.leaseExpiresAt!.getTime()).toBe(nowMs + 1000);
    expect((await store.readChanges({ afterSeq: head, limit: 10 })).map((c) => c.kind)).toEqual(['job']);
    const items = await store.peekOutbox('a', 10);
    expect(items.map((i) => i.kind)).toEqual(['job_ended', 'job_revived']);
    expect(items[1]!.payload).toEqual({
      lostReason: expect.stringMatching(/^lost: no heartbeat; last sign/),
    });
  });

  it('never revives a job its trainer ended, whatever the session', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a'));
    await store.endJob({
      jobId: 'a',
      status: 'failed',
      finalMetrics: {},
      errorMessage: 'oom',
      endedAt: new Date(),
    });
    const r = await store.renewLease('a', { nowMs: Date.now(), leaseMs: 1000, sessionId: 'session-a' });
    expect(r).toMatchObject({ renewed: false, revived: false });
    expect(r.job).toMatchObject({ status: 'failed', endCause: 'reported', errorMessage: 'oom' });
  });

  it('ends a job on process evidence only while the job still has that trainer', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a'));
    await store.createOrGetJob(newJob('b'));
    // b was resumed by another process meanwhile: the old process' death says nothing about it.
    await store.reopenJob('b', { startEpoch: 1, trainer: { ...TRAINER, pid: 99, sessionId: 'session-b' } });
    const endedAt = new Date();
    const input = { trainer: TRAINER, reason: 'lost: trainer process 4242 on host gpu-7 exited', endedAt };

    const a = await store.endLostJob({ jobId: 'a', ...input });
    expect(a).toMatchObject({
      status: 'failed',
      endCause: 'process_exited',
      endReason: input.reason,
      endedAt,
    });
    expect(await store.endLostJob({ jobId: 'b', ...input })).toBeUndefined();
    expect((await store.getJob('b'))!.status).toBe('running');
    // Already ended: nothing more.
    expect(await store.endLostJob({ jobId: 'a', ...input })).toBeUndefined();
    // A trainer not named in full gives no process evidence.
    expect(
      await store.endLostJob({ jobId: 'b', ...input, trainer: { ...TRAINER, bootId: '' } }),
    ).toBeUndefined();
  });

  it('a resume clears the verdict and starts a fresh lease with the new trainer', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a', { leaseMs: 1000 }));
    await store.expireLeases(Date.now() + 5000, 100, verdict);
    const job = await store.reopenJob('a', { startEpoch: 2, trainer: null, leaseMs: 60_000 });
    expect(job).toMatchObject({ status: 'running', endReason: '' });
    expect(job.endCause).toBeUndefined();
    expect(job.trainer).toBeUndefined();
    expect(job.leaseExpiresAt!.getTime()).toBeGreaterThan(Date.now() + 50_000);
  });

  it('extends the leases of running jobs at start-up and lists the trainers on a boot id', async () => {
    const store = await openTestStore();
    await store.createOrGetJob(newJob('a', { leaseMs: 1 }));
    await store.createOrGetJob(newJob('old', { leaseMs: undefined, trainer: undefined }));
    await store.createOrGetJob(newJob('ended', { leaseMs: 1 }));
    await store.endJob({
      jobId: 'ended',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    const until = Date.now() + 60_000;
    expect(await store.extendLeases(until)).toBe(2);
    expect((await store.getJob('a'))!.leaseExpiresAt!.getTime()).toBe(until);
    expect((await store.getJob('old'))!.leaseExpiresAt!.getTime()).toBe(until);
    expect((await store.getJob('ended'))!.leaseExpiresAt).toBeUndefined();
    expect(await store.runningTrainers(TRAINER.bootId)).toEqual([{ jobId: 'a', trainer: TRAINER }]);
    expect(await store.runningTrainers('another-boot')).toEqual([]);
  });
});
