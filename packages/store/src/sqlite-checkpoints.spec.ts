// The WAL checkpoints of an SQLite store run on their own thread: the store's commits stay below the
// writer's fallback threshold, yet the WAL is copied into the database; closing leaves no WAL behind.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openStore } from './index.ts';
import { FALLBACK_AUTOCHECKPOINT_PAGES, THREAD_START_FRAMES, walFramesBehind } from './sqlite-checkpoints.ts';
import { sampleJob } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'store-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/**
 * The WAL's frame count and how many of them a checkpoint has copied, read here from the wal-index
 * (the -shm file) independently of walFramesBehind: mxFrame at byte 16, nBackfill at byte 96.
 */
function walProgress(dbPath: string): { frames: number; copied: number } {
  const index = readFileSync(`${dbPath}-shm`);
  return { frames: index.readUInt32LE(16), copied: index.readUInt32LE(96) };
}

it('starts a thread once the WAL holds enough frames, which copies them into the database while the writer is below its own threshold; closing removes the WAL', async () => {
  const dbPath = join(dir, 'store.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j'));
  for (let epoch = 0; epoch < 60; epoch++) {
    await store.saveEpoch({
      jobId: 'j',
      epoch,
      metrics: { accuracy: epoch / 60 },
      columns: { accuracy: epoch / 60 },
      timestamp: new Date(),
      best: null,
    });
  }
  const written = walProgress(dbPath).frames;
  expect(walFramesBehind(dbPath)).toBe(written);
  // Enough to start the thread, far below the writer's own automatic checkpoint: only the thread
  // copies these frames.
  expect(written).toBeGreaterThan(THREAD_START_FRAMES);
  expect(written).toBeLessThan(FALLBACK_AUTOCHECKPOINT_PAGES / 4);
  let progress = walProgress(dbPath);
  for (const started = Date.now(); progress.copied < progress.frames && Date.now() - started < 15_000; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    progress = walProgress(dbPath);
  }
  expect(progress).toEqual({ frames: written, copied: written });
  await store.close();
  // The thread's connection closed first, so the writer's close was the last and removed the WAL.
  expect(existsSync(`${dbPath}-wal`)).toBe(false);
  // What was written is in the database file itself.
  const reopened = await openStore({ dbPath });
  expect(await reopened.listEpochs('j')).toHaveLength(60);
  await reopened.close();
}, 30_000);

it('starts no thread for a store that writes little: its frames wait for the writer’s own checkpoint', async () => {
  const dbPath = join(dir, 'quiet.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j'));
  const written = walProgress(dbPath).frames;
  expect(written).toBeGreaterThan(0);
  expect(written).toBeLessThan(THREAD_START_FRAMES);
  // Past two looks at the WAL: nothing copied.
  await new Promise((resolve) => setTimeout(resolve, 2500));
  expect(walProgress(dbPath)).toEqual({ frames: written, copied: 0 });
  await store.close();
});
