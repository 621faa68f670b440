// The thread of the store's WAL checkpoints (sqlite-checkpoints.ts): PRAGMA wal_checkpoint(PASSIVE) on
// a connection of its own, so the sidecar's event loop never copies the WAL into the database or waits
// for its fsyncs. Loads better-sqlite3 only; ends by itself after a while with nothing to copy.
import { parentPort, workerData } from 'node:worker_threads';
import { nativeDatabase } from './native-sqlite.ts';

const { path, synchronous, activeMs, idleMs, idleExitMs } = workerData as {
  path: string;
  synchronous: string;
  activeMs: number;
  idleMs: number;
  idleExitMs: number;
};

const db = new (nativeDatabase())(path, { fileMustExist: true, timeout: 0 });
// The checkpoint's fsyncs follow the writer's durability (NORMAL or FULL).
db.pragma(`synchronous = ${synchronous}`);
let timer: NodeJS.Timeout | undefined;
let idleSince = Date.now();
/** The WAL's frame count and copied count after the last checkpoint: unchanged means nothing was written. */
let last = '';

function end(): void {
  clearTimeout(timer);
  db.close();
  parentPort!.close();
}

/**
 * One PASSIVE checkpoint: it copies what it can without waiting for the writer or any reader, so it
 * never blocks a commit. While frames remain behind (the writer kept writing), the next runs soon.
 */
function checkpoint(): void {
  let behind = 0;
  let progress = last;
  try {
    const [row] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
    behind = row ? row.log - row.checkpointed : 0;
    progress = row ? `${row.log}/${row.checkpointed}` : '';
  } catch {
    // Another checkpointer holds the checkpoint lock (the writer's fallback), or the disk refuses the
    // copy (full, read-only): nothing is lost, the frames stay in the WAL. Counted as no progress: the
    // thread tries again at the idle pace and ends if it lasts; the writer's watch starts it again.
  }
  const now = Date.now();
  if (behind > 0 || progress !== last) idleSince = now;
  else if (now - idleSince >= idleExitMs) {
    end();
    return;
  }
  last = progress;
  timer = setTimeout(checkpoint, behind > 0 ? activeMs : idleMs);
}

parentPort!.on('message', (message: string) => {
  if (message === 'stop') end();
});
checkpoint();
