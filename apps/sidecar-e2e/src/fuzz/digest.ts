// What the fuzz suite checks a refused write against: the real database (a SQLite file, or a
// PostgreSQL database in the PostgreSQL run), read from outside the sidecar, and the files of its data
// directory. PostgreSQL's counterpart of what follows: PostgresWatch.
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
import pg from 'pg';
import { isPostgres } from '../database.ts';

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

/**
 * Watches the sidecar's database from outside: `begin` before a call, `unchanged` after a refused call
 * or a read, `end` after an accepted one. For a SQLite file or a PostgreSQL database (`dbPath` a URL).
 */
export interface DatabaseWatch {
  readonly dbPath: string;
  /** How many full digest comparisons were made (printed by the suite). */
  readonly digests: number;
  /** Call right before a case: pins the database as it is now. */
  begin(): Promise<void>;
  /**
   * Call after a refused case (or a read): undefined when the database is unchanged, else what changed.
   * `fullEvery`: compare full digests on every n-th check even when nothing was committed.
   */
  unchanged(fullEvery?: number): Promise<string | undefined>;
  /** Call after an accepted case: releases the snapshot. */
  end(): Promise<void>;
  /** Whether the database is still the one the sidecar opened (a SQLite file not replaced). */
  sameFile(): boolean;
  close(): Promise<void>;
}

/** A watch on the sidecar's database: its SQLite file, or its PostgreSQL database. */
export async function watchDatabase(dbPath: string): Promise<DatabaseWatch> {
  if (!isPostgres(dbPath)) return new SqliteWatch(dbPath);
  const before = new pg.Client({ connectionString: dbPath });
  const now = new pg.Client({ connectionString: dbPath });
  await before.connect();
  await now.connect();
  return new PostgresWatch(dbPath, before, now);
}

const changedDigests = (before: string, after: string) =>
  before === after
    ? undefined // (a commit that changed no row)
    : `the database changed (digest of every table ${before.slice(0, 12)} → ${after.slice(0, 12)})`;

/** Watches one SQLite file through two read-only connections of its own. */
class SqliteWatch implements DatabaseWatch {
  readonly dbPath: string;
  /** Holds the snapshot from before the call. */
  readonly #before: Database.Database;
  /** Reads the file as it is now. */
  readonly #now: Database.Database;
  readonly #inode: number;
  #version = 0;
  #checks = 0;
  digests = 0;

  constructor(dbPath: string) {
    this.dbPath = dbPath;
    this.#before = new Database(dbPath, { readonly: true, fileMustExist: true });
    this.#now = new Database(dbPath, { readonly: true, fileMustExist: true });
    this.#inode = statSync(dbPath).ino;
  }

  async begin(): Promise<void> {
    if (this.#before.inTransaction) this.#before.exec('COMMIT');
    this.#before.exec('BEGIN');
    this.#before.prepare('select count(*) from sqlite_master').get(); // starts the read snapshot
    this.#version = this.#now.pragma('data_version', { simple: true }) as number;
  }

  async unchanged(fullEvery = 50): Promise<string | undefined> {
    try {
      if (!this.sameFile()) return 'the database file was replaced';
      const moved = (this.#now.pragma('data_version', { simple: true }) as number) !== this.#version;
      if (!moved && ++this.#checks % fullEvery !== 0) return undefined;
      this.digests++;
      return changedDigests(digestDatabase(this.#before), digestDatabase(this.#now));
    } finally {
      await this.end();
    }
  }

  async end(): Promise<void> {
    if (this.#before.inTransaction) this.#before.exec('COMMIT');
  }

  sameFile(): boolean {
    return statSync(this.dbPath).ino === this.#inode;
  }

  async close(): Promise<void> {
    await this.end();
    this.#before.close();
    this.#now.close();
  }
}

/** SHA-256 over every row of every table of the current schema (migrations included). */
async function digestPostgres(client: pg.Client): Promise<string> {
  const hash = createHash('sha256');
  const tables = await client.query<{ name: string }>(
    'select tablename as name from pg_tables where schemaname = current_schema() order by tablename',
  );
  for (const { name } of tables.rows) {
    hash.update(`table ${name}\n`);
    // Every column as its text form: stable, and exact for doubles, bigints, bytea and jsonb.
    const rows = await client.query<{ row: string }>(
      `select t::text as row from "${name.replaceAll('"', '""')}" t`,
    );
    const lines = rows.rows.map((r) => r.row).sort();
    for (const line of lines) hash.update(`${line}\n`);
  }
  return hash.digest('hex');
}

/**
 * Watches one PostgreSQL database through two connections of its own. Before a call, one opens a
 * REPEATABLE READ transaction: it keeps seeing the database as it was, however much the sidecar commits
 * meanwhile. After it, the server's transaction snapshot (`pg_current_snapshot()`: the next transaction
 * id and those in progress) tells whether any writing transaction began or ended since — read-only ones
 * get no transaction id —, PostgreSQL's counterpart of SQLite's data_version; if one did, the digests
 * are compared. (Transaction ids are per server: another database's writes only cost a comparison.)
 */
class PostgresWatch implements DatabaseWatch {
  readonly dbPath: string;
  readonly #before: pg.Client;
  readonly #now: pg.Client;
  #open = false;
  #snapshot = '';
  #checks = 0;
  digests = 0;

  constructor(dbPath: string, before: pg.Client, now: pg.Client) {
    this.dbPath = dbPath;
    this.#before = before;
    this.#now = now;
  }

  async #currentSnapshot(): Promise<string> {
    return (await this.#now.query<{ s: string }>('select pg_current_snapshot()::text as s')).rows[0]!.s;
  }

  async begin(): Promise<void> {
    await this.end();
    await this.#before.query('begin isolation level repeatable read');
    this.#open = true;
    this.#snapshot = await this.#currentSnapshot();
    await this.#before.query('select 1'); // takes the transaction's snapshot (after the marker: safe side)
  }

  async unchanged(fullEvery = 50): Promise<string | undefined> {
    try {
      const moved = (await this.#currentSnapshot()) !== this.#snapshot;
      if (!moved && ++this.#checks % fullEvery !== 0) return undefined;
      this.digests++;
      return changedDigests(await digestPostgres(this.#before), await digestPostgres(this.#now));
    } finally {
      await this.end();
    }
  }

  async end(): Promise<void> {
    if (!this.#open) return;
    this.#open = false;
    await this.#before.query('commit');
  }

  sameFile(): boolean {
    return true; // no file to replace
  }

  async close(): Promise<void> {
    await this.end();
    await this.#before.end();
    await this.#now.end();
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
