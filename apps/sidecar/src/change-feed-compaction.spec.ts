// On both dialects: PostgreSQL's seqs are not consecutive (they follow the writing transactions), so
// the compaction counts rows, never seqs.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type PostgresServer, startPostgres } from '@training-callbacks/postgres-testing';
import { openStore, type Store } from '@training-callbacks/store';
import { sampleJob } from '@training-callbacks/store/testing';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startFeedCompaction } from './change-feed-compaction.ts';

let dir: string | undefined;
let store: Store;
let server: Promise<PostgresServer> | undefined;
let databases = 0;
async function openOn(dialect: 'sqlite' | 'postgresql'): Promise<void> {
  if (dialect === 'postgresql') {
    server ??= startPostgres();
    store = await openStore({ dbPath: await (await server).createDatabase(`compaction_${++databases}`) });
  } else {
    dir = mkdtempSync(path.join(tmpdir(), 'feed-compaction-'));
    store = await openStore({ dbPath: path.join(dir, 'db.sqlite') });
  }
}
afterEach(async () => {
  await store.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});
afterAll(async () => {
  if (server) await (await server).stop();
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

describe.each(['sqlite', 'postgresql'] as const)('change feed compaction on %s', (dialect) => {
  it('starts a pass by itself once enough rows were appended, leaving the newest rows', async () => {
    await openOn(dialect);
    await jobSyncedTimes('a', 300);
    const newest = (await feed()).slice(-20);
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
      expect(lines[0]).toMatch(/change feed compacted: \d+ superseded row\(s\) of seqs \d+–\d+ deleted/);
      // The job row (created), the epoch, the newest 20 rows (19 of them below the head + the head).
      const rows = await feed();
      expect(rows.length).toBeLessThanOrEqual(2 + 21);
      expect(rows.slice(-20)).toEqual(newest);
      expect(rows.map((r) => r.kind)).toContain('epoch');
      // Not again until as many rows more were appended.
      await new Promise((r) => setTimeout(r, 100));
      expect(lines).toHaveLength(1);
    } finally {
      await compaction.stop();
    }
  });

  it('a pass asked for directly compacts up to the newest rows kept', async () => {
    await openOn(dialect);
    await jobSyncedTimes('a', 50);
    const first = await store.firstSeq();
    // Taken before the pass: on PostgreSQL the head moves on with every transaction (its own deletes too).
    const head = await store.headSeq();
    const compaction = startFeedCompaction({ store, keepRecent: 0, chunk: 7, intervalMs: 60_000 });
    try {
      const { deleted, fromSeq, toSeq } = await compaction.runPass();
      expect(deleted).toBe(49);
      expect([fromSeq, toSeq]).toEqual([first, head + 1]);
      expect((await feed()).map((r) => r.kind)).toEqual(['job', 'epoch', 'mlflow']);
    } finally {
      await compaction.stop();
    }
  });
});
