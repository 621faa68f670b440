import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startFeedCompaction } from './change-feed-compaction.ts';

let dir: string;
let store: Store;
beforeEach(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'feed-compaction-'));
  store = await openStore({ dbPath: path.join(dir, 'db.sqlite') });
});
afterEach(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** A job whose MLflow sync changed `n` times: `n` feed rows saying the same thing, and one epoch. */
async function jobSyncedTimes(jobId: string, n: number): Promise<void> {
  await store.createOrGetJob(sampleJob(jobId));
  await store.saveEpoch({
    jobId,
    epoch: 0,
    metrics: { accuracy: 0.5 },
    columns: { accuracy: 0.5 },
    timestamp: new Date(),
    best: { epoch: 0, value: 0.5 },
  });
  for (let i = 0; i < n; i++) await store.setMlflowIds(jobId, '1', `run-${i}`);
}

const feed = () => store.readChanges({ afterSeq: 0, limit: 100_000 });

describe('change feed compaction', () => {
  it('starts a pass by itself once enough rows were appended, leaving the newest rows', async () => {
    await jobSyncedTimes('a', 300);
    const head = await store.headSeq();
    const newest = await store.readChanges({ afterSeq: head - 20, limit: 100 });
    const lines: string[] = [];
    const compaction = startFeedCompaction({
      store,
      everyRows: 100,
      keepRecent: 20,
      chunk: 25,
      intervalMs: 10,
      log: (line) => lines.push(line),
    });
    try {
      for (let i = 0; i < 500 && lines.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      expect(lines[0]).toMatch(/change feed compacted: \d+ superseded row\(s\) of seqs 1–\d+ deleted/);
      // The job row (created), the epoch, the newest 20 rows (19 of them below the head + the head).
      const rows = await feed();
      expect(rows.length).toBeLessThanOrEqual(2 + 21);
      expect(await store.readChanges({ afterSeq: head - 20, limit: 100 })).toEqual(newest);
      expect(rows.map((r) => r.kind)).toContain('epoch');
      // Not again until as many rows more were appended.
      await new Promise((r) => setTimeout(r, 100));
      expect(lines).toHaveLength(1);
    } finally {
      await compaction.stop();
    }
  });

  it('a pass asked for directly compacts up to the newest rows kept', async () => {
    await jobSyncedTimes('a', 50);
    const compaction = startFeedCompaction({ store, keepRecent: 0, chunk: 7, intervalMs: 60_000 });
    try {
      const { deleted, fromSeq, toSeq } = await compaction.runPass();
      expect(deleted).toBe(49);
      expect([fromSeq, toSeq]).toEqual([1, (await store.headSeq()) + 1]);
      expect((await feed()).map((r) => r.kind)).toEqual(['job', 'epoch', 'mlflow']);
    } finally {
      await compaction.stop();
    }
  });
});
