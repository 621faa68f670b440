// The thread of the store's WAL checkpoints (sqlite-checkpoints.ts): PRAGMA wal_checkpoint(PASSIVE) on
// a connection of its own, so the sidecar's event loop never copies the WAL into the database or waits
// for its fsyncs. Loads better-sqlite3 only.
import { parentPort, workerData } from 'node:worker_threads';
import { nativeDatabase } from './native-sqlite.ts';

const { path, synchronous, activeMs, idleMs } = workerData as {
  path: string;
  synchronous: string;
  activeMs: number;
  idleMs: number;
};

const db = new (nativeDatabase())(path, { fileMustExist: true, timeout: 0 });
// The checkpoint's fsyncs follow the writer's durability (NORMAL or FULL).
db.pragma(`synchronous = ${synchronous}`);
let timer: NodeJS.Timeout | undefined;

/**
 * One PASSIVE checkpoint: it copies what it can without waiting for the writer or any reader, so it
 * never blocks a commit. While frames remain behind (the writer kept writing), the next runs soon.
 */
function checkpoint(): void {
  let behind = 0;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    behind = row ? row.log - row.checkpointed : 0;
  } catch {
    // Another checkpointer holds the checkpoint lock (the writer's fallback), or the disk refuses the
    // copy (full, read-only): nothing is lost, the frames stay in the WAL; try again later.
    behind = 1;
  }
  timer = setTimeout(checkpoint, behind > 0 ? activeMs : idleMs);
}

parentPort!.on('message', (message: string) => {
  if (message !== 'stop') return;
  clearTimeout(timer);
  db.close();
  parentPort!.close();
});
checkpoint();
