// What the fuzz suite checks a refused write against: the real SQLite file, read from outside the
// sidecar, and the files of its data directory.
//
// Before each call a read transaction is opened on a connection of our own: in WAL mode it keeps
// seeing the file as it was before the call, however much the sidecar commits meanwhile. After a
// refused call (or a read) a second connection's `PRAGMA data_version` tells whether anybody
// committed; if anybody did, the digest of every table (SHA-256 over every row, in a stable order)
// before and after the call are compared. Every `fullEvery`-th check compares the digests even when
// nothing was committed, which keeps the digest itself honest; computing two full digests for each
// of 10,000 cases would cost more than the calls once the file holds thousands of rows.
import { createHash } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';

/** SHA-256 over every row of every table (sqlite_sequence and migrations included). */
export function digestDatabase(db: Database.Database): string {
  const hash = createHash('sha256');
  const tables = db
    .prepare("select name from sqlite_master where type = 'table' order by name")
    .pluck()
    .all() as string[];
  for (const table of tables) {
    hash.update(`table ${table}\n`);
    const rows = db
      .prepare(`select * from "${table.replaceAll('"', '""')}"`)
      .raw()
      .all() as unknown[][];
    const lines = rows.map((row) =>
      JSON.stringify(row, (_k, v) =>
        Buffer.isBuffer(v) ? `x${v.toString('hex')}` : typeof v === 'bigint' ? `n${v}` : v,
      ),
    );
    lines.sort();
    for (const line of lines) hash.update(`${line}\n`);
  }
  return hash.digest('hex');
}

/** Watches one SQLite file through two read-only connections of its own. */
export class DatabaseWatch {
  readonly dbPath: string;
  /** Holds the snapshot from before the call. */
  readonly #before: Database.Database;
  /** Reads the file as it is now. */
  readonly #now: Database.Database;
  readonly #inode: number;
  #version = 0;
  #checks = 0;
  /** How many full digest comparisons were made (printed by the suite). */
  digests = 0;

  constructor(dbPath: string) {
    this.dbPath = dbPath;
    this.#before = new Database(dbPath, { readonly: true, fileMustExist: true });
    this.#now = new Database(dbPath, { readonly: true, fileMustExist: true });
    this.#inode = statSync(dbPath).ino;
  }

  /** Call right before a case: pins the file as it is now. */
  begin(): void {
    if (this.#before.inTransaction) this.#before.exec('COMMIT');
    this.#before.exec('BEGIN');
    this.#before.prepare('select count(*) from sqlite_master').get(); // starts the read snapshot
    this.#version = this.#now.pragma('data_version', { simple: true }) as number;
  }

  /**
   * Call after a refused case (or a read): undefined when the file is unchanged, else what changed.
   * `fullEvery`: compare full digests on every n-th check even when nothing was committed.
   */
  unchanged(fullEvery = 50): string | undefined {
    try {
      if (!this.sameFile()) return 'the database file was replaced';
      const moved = (this.#now.pragma('data_version', { simple: true }) as number) !== this.#version;
      if (!moved && ++this.#checks % fullEvery !== 0) return undefined;
      this.digests++;
      const before = digestDatabase(this.#before);
      const after = digestDatabase(this.#now);
      if (before === after) return undefined; // (a commit that changed no row)
      return `the database changed (digest of every table ${before.slice(0, 12)} → ${after.slice(0, 12)})`;
    } finally {
      this.end();
    }
  }

  /** Call after an accepted case: releases the snapshot. */
  end(): void {
    if (this.#before.inTransaction) this.#before.exec('COMMIT');
  }

  /** Whether the file is still the one the sidecar opened (not replaced, e.g. by an artifact). */
  sameFile(): boolean {
    return statSync(this.dbPath).ino === this.#inode;
  }

  close(): void {
    this.end();
    this.#before.close();
    this.#now.close();
  }
}

/** Every file under `dir` (except `exclude`d ones), relative to it, sorted. Names only: cheap enough
 *  to list per case; a replaced database file is caught by its inode instead. */
export function listFiles(dir: string, exclude: (file: string) => boolean): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => !entry.isDirectory() && !exclude(entry.name))
    .map((entry) => path.relative(dir, path.join(entry.parentPath, entry.name)))
    .sort();
}
