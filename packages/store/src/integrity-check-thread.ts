// The thread of `checkIntegrity` (sqlite-file.ts): PRAGMA quick_check on a connection of its own,
// so start-up can stop waiting for it. Loads better-sqlite3 only.
import { parentPort, workerData } from 'node:worker_threads';
import { nativeDatabase } from './native-sqlite.ts';

const { path, maxErrors } = workerData as { path: string; maxErrors: number };
try {
  const Database = nativeDatabase();
  // Not read-only: a read-only connection cannot open a WAL database whose -shm file is missing.
  // quick_check itself only reads.
  const db = new Database(path, { fileMustExist: true });
  try {
    const rows = db.pragma(`quick_check(${Math.max(1, Math.trunc(maxErrors))})`) as {
      quick_check: string;
    }[];
    parentPort!.postMessage({ problems: rows.map((row) => row.quick_check) });
  } finally {
    db.close();
  }
} catch (error) {
  const e = error as { message?: string; code?: string };
  parentPort!.postMessage({ error: { message: e.message ?? String(error), code: e.code } });
}
