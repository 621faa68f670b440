// The WAL checkpoints of an SQLite store run on their own thread: the store's commits stay below the
// writer's fallback threshold, yet the WAL is copied into the database; closing leaves no WAL behind.
// Watched from outside by the database file's size (stat, no descriptor: opening and closing one of the
// database's files here would drop the store's POSIX locks on it, see sqlite-checkpoints.ts).
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { openStore, type Store } from './index.ts';
import { THREAD_START_COMMITS } from './sqlite-checkpoints.ts';
import { sampleJob } from './testing.ts';

const dir = mkdtempSync(join(tmpdir(), 'store-checkpoints-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `count` epoch reports of job `j`, one commit each. */
async function reportEpochs(store: Store, count: number): Promise<void> {
  for (let epoch = 0; epoch < count; epoch++) {
    await store.saveEpoch({
      jobId: 'j',
      epoch,
      metrics: { accuracy: epoch / count },
      columns: { accuracy: epoch / count },
      timestamp: new Date(),
      best: null,
    });
  }
}

const sizeOf = (file: string) => statSync(file).size;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it('starts a thread once the store has committed enough, which copies the WAL into the database; closing removes the WAL', async () => {
  const dbPath = join(dir, 'store.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j'));
  const before = sizeOf(dbPath);
  // Far below the writer's own automatic checkpoint (4,000 pages): only the thread copies these pages.
  await reportEpochs(store, THREAD_START_COMMITS * 2);
  expect(sizeOf(dbPath)).toBe(before);
  for (const started = Date.now(); sizeOf(dbPath) === before && Date.now() - started < 15_000; )
    await sleep(20);
  expect(sizeOf(dbPath)).toBeGreaterThan(before);
  await store.close();
  // The thread's connection closed first, so the writer's close was the last and removed the WAL.
  expect(existsSync(`${dbPath}-wal`)).toBe(false);
  const reopened = await openStore({ dbPath });
  expect(await reopened.listEpochs('j')).toHaveLength(THREAD_START_COMMITS * 2);
  await reopened.close();
});

it('starts no thread for a store that commits little: its pages wait for the writer’s own checkpoint', async () => {
  const dbPath = join(dir, 'quiet.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('j'));
  await reportEpochs(store, THREAD_START_COMMITS / 4);
  const before = sizeOf(dbPath);
  // Past two looks at the count of commits: nothing copied into the database file.
  await sleep(2500);
  expect(sizeOf(dbPath)).toBe(before);
  await store.close();
});
