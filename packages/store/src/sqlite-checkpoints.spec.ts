// The WAL checkpoints of an SQLite store run on their own thread: the store's commits stay below the
// writer's fallback threshold, yet the WAL is copied into the database; closing leaves no WAL behind.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openStore } from './index.ts';
import { FALLBACK_AUTOCHECKPOINT_PAGES } from './sqlite-checkpoints.ts';
import { sampleJob } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'store-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The WAL's frame count and how many of them a checkpoint has copied, from the wal-index (the -shm
 * file): two copies of the 48-byte header (mxFrame at byte 16), then nBackfill (byte 96), native order.
 */
function walProgress(dbPath: string): { frames: number; copied: number } {
  const index = readFileSync(`${dbPath}-shm`);
  return { frames: index.readUInt32LE(16), copied: index.readUInt32LE(96) };
}

it('copies the WAL into the database from its own thread, with the writer below its own threshold; closing removes the WAL', async () => {
  const dbPath = join(dir, 'store.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j'));
  for (let epoch = 0; epoch < 40; epoch++) {
    await store.saveEpoch({
      jobId: 'j',
      epoch,
      metrics: { accuracy: epoch / 40 },
      columns: { accuracy: epoch / 40 },
      timestamp: new Date(),
      best: null,
    });
  }
  const written = walProgress(dbPath).frames;
  // Far below the writer's own automatic checkpoint: only the thread copies these frames.
  expect(written).toBeGreaterThan(0);
  expect(written).toBeLessThan(FALLBACK_AUTOCHECKPOINT_PAGES / 4);
  let progress = walProgress(dbPath);
  for (const started = Date.now(); progress.copied < progress.frames && Date.now() - started < 5000; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    progress = walProgress(dbPath);
  }
  expect(progress).toEqual({ frames: written, copied: written });
  await store.close();
  // The thread's connection closed first, so the writer's close was the last and removed the WAL.
  expect(existsSync(`${dbPath}-wal`)).toBe(false);
  // What was written is in the database file itself.
  const reopened = await openStore({ dbPath });
  expect(await reopened.listEpochs('j')).toHaveLength(40);
  await reopened.close();
});
