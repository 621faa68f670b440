// Start-up protection of the SQLite file, before MikroORM or a migration touches it: refuse a file
// that is not this sidecar's database (another application's SQLite file must not get our tables or
// be switched to WAL), refuse a damaged one (a bounded PRAGMA quick_check on a thread of its own), and
// a lock that keeps a second sidecar off a database one already serves.
import { closeSync, existsSync, mkdirSync, openSync, readSync } from 'node:fs';
import { dirname, extname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type NativeDatabase, nativeDatabase } from './native-sqlite.ts';

/**
 * Written into the SQLite header of every database this store creates (`PRAGMA application_id`),
 * so a file can be told apart from another application's: "TCCB" in ASCII.
 */
export const SIDECAR_APPLICATION_ID = 0x54434342;

/** Why a database was refused at start-up. */
export type DatabaseRefusal = 'in_use' | 'foreign' | 'damaged' | 'disk_full' | 'permission';

/** A refusal to open the database, with a message that says what to do. */
export class DatabaseOpenError extends Error {
  override readonly name = 'DatabaseOpenError';
  readonly reason: DatabaseRefusal;
  readonly path: string;

  constructor(reason: DatabaseRefusal, path: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.reason = reason;
    this.path = path;
  }
}

/** What the file at the database path is, when it may be used. */
export type DatabaseFileKind =
  /** No file, or an SQLite file with no tables: the store makes it its own. */
  | 'new'
  /** This store's database (its application id). */
  | 'ours'
  /** A database of this store written before the application id existed (its migrations table). */
  | 'legacy';

const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/** The SQLite result code of a driver error ('SQLITE_CORRUPT', …), or undefined. */
export function sqliteCode(error: unknown): string | undefined {
  for (let e = error; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code.startsWith('SQLITE_')) return code;
  }
  return undefined;
}

/** A failure opening or reading the file, as a refusal when it is one; otherwise the error itself. */
export function refusalOf(error: unknown, path: string): unknown {
  if (error instanceof DatabaseOpenError) return error;
  const code = sqliteCode(error) ?? (error as { code?: string } | undefined)?.code ?? '';
  const detail = error instanceof Error ? error.message : String(error);
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return damaged(path, detail, error);
  }
  if (code.startsWith('SQLITE_FULL') || code === 'ENOSPC' || code === 'EDQUOT') {
    return new DatabaseOpenError(
      'disk_full',
      path,
      `the file system holding ${path} is full (${detail}); free space there, then start the sidecar again`,
      { cause: error },
    );
  }
  if (
    code.startsWith('SQLITE_CANTOPEN') ||
    code.startsWith('SQLITE_READONLY') ||
    code.startsWith('SQLITE_PERM') ||
    code === 'SQLITE_AUTH' ||
    code === 'EACCES' ||
    code === 'EPERM' ||
    code === 'EROFS'
  ) {
    return new DatabaseOpenError(
      'permission',
      path,
      `cannot open ${path} for writing (${detail}); the sidecar needs read and write access to the file, ` +
        'its -wal and -shm files and its directory: fix the permissions or the mount, or choose another --db',
      { cause: error },
    );
  }
  return error;
}

function damaged(path: string, detail: string, cause?: unknown): DatabaseOpenError {
  return new DatabaseOpenError(
    'damaged',
    path,
    `the database ${path} is damaged (${detail}). The sidecar will not write into it. Stop every process ` +
      'using it, keep the file (with its -wal and -shm files) for inspection, and restore it from a backup ' +
      '(or try `sqlite3 FILE ".recover"` into a new file); or start with a new --db',
    cause === undefined ? undefined : { cause },
  );
}

/** The first 16 bytes of the file (fewer for a shorter file). */
function fileHead(path: string): Buffer {
  const fd = openSync(path, 'r');
  try {
    const head = Buffer.alloc(16);
    return head.subarray(0, readSync(fd, head, 0, 16, 0));
  } finally {
    closeSync(fd);
  }
}

/**
 * Tells whether the file at `path` may be opened as this store's database, without writing to it.
 * Refuses (DatabaseOpenError 'foreign') a file that is not SQLite, or an SQLite database of another
 * application: another application id, or tables but no trace of this store's migrations.
 */
export function inspectDatabaseFile(path: string, firstMigration: string): DatabaseFileKind {
  if (!existsSync(path)) return 'new';
  try {
    const head = fileHead(path);
    if (head.length > 0 && !head.equals(SQLITE_MAGIC.subarray(0, head.length))) {
      throw foreign(path, 'it is not an SQLite database');
    }
    if (head.length > 0 && head.length < SQLITE_MAGIC.length) throw damaged(path, 'the file is truncated');
    const Database = nativeDatabase();
    const db = new Database(path, { fileMustExist: true, timeout: 0 });
    try {
      const applicationId = db.pragma('application_id', { simple: true }) as number;
      if (applicationId === SIDECAR_APPLICATION_ID) return 'ours';
      const tables = db
        .prepare("select name from sqlite_master where type in ('table', 'view') order by name")
        .all()
        .map((row) => String(row.name));
      if (applicationId !== 0) {
        throw foreign(
          path,
          `its application_id is 0x${(applicationId >>> 0).toString(16)}, not this sidecar's`,
        );
      }
      if (tables.length === 0) return 'new';
      if (
        tables.includes('mikro_orm_migrations') &&
        db.prepare('select 1 from mikro_orm_migrations where name = ?').get([firstMigration])
      ) {
        return 'legacy';
      }
      const shown = tables.slice(0, 5).join(', ') + (tables.length > 5 ? ', …' : '');
      throw foreign(path, `it holds tables of another application (${shown})`);
    } finally {
      db.close();
    }
  } catch (error) {
    throw refusalOf(error, path);
  }
}

function foreign(path: string, why: string): DatabaseOpenError {
  return new DatabaseOpenError(
    'foreign',
    path,
    `${path} is not a training-callbacks database: ${why}. The sidecar leaves it untouched. ` +
      "Point --db at this sidecar's own database, or at a path that does not exist yet (it is created)",
  );
}

/** Sets this store's application id (on a new or legacy database, before its first migration). */
export function markAsOurs(db: Pick<NativeDatabase, 'pragma'>): void {
  db.pragma(`application_id = ${SIDECAR_APPLICATION_ID}`);
}

/** Options of {@link checkIntegrity}. */
export interface IntegrityCheckOptions {
  /** How long start-up waits for the check; past it the store opens and the check goes on. */
  timeoutMs: number;
  /** Called when a check that outlived `timeoutMs` later finds damage. */
  onLateDamage?: (error: DatabaseOpenError) => void;
  /** How many problems quick_check lists at most. */
  maxErrors?: number;
}

/** The outcome of {@link checkIntegrity}. */
export type IntegrityOutcome = 'ok' | 'still-running';

const THREAD_URL = new URL(
  `./integrity-check-thread${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/**
 * Runs `PRAGMA quick_check` (a scan of every page, without the index cross-checks of integrity_check)
 * on a thread of its own. Rejects with DatabaseOpenError 'damaged' when it finds a problem within
 * `timeoutMs`; resolves 'still-running' when it takes longer (a very large file), leaving the check
 * running: its late verdict goes to `onLateDamage`. SQLite cannot interrupt a check from another
 * thread, so bounding the wait, not the check, is what keeps start-up within its time.
 */
export function checkIntegrity(path: string, options: IntegrityCheckOptions): Promise<IntegrityOutcome> {
  const thread = new Worker(THREAD_URL, {
    workerData: { path, maxErrors: options.maxErrors ?? 10 },
    name: 'integrity-check',
  });
  const verdict = new Promise<DatabaseOpenError | undefined>((resolve) => {
    thread.once(
      'message',
      (message: { problems: string[] } | { error: { message: string; code?: string } }) => {
        if ('problems' in message) {
          resolve(
            message.problems.length === 0 || (message.problems.length === 1 && message.problems[0] === 'ok')
              ? undefined
              : damaged(path, `PRAGMA quick_check: ${message.problems.join('; ')}`),
          );
        } else {
          const cause = Object.assign(new Error(`PRAGMA quick_check: ${message.error.message}`), {
            code: message.error.code,
          });
          const refusal = refusalOf(cause, path);
          resolve(refusal instanceof DatabaseOpenError ? refusal : damaged(path, cause.message, cause));
        }
      },
    );
    thread.once('error', (error) => resolve(damaged(path, `the check failed: ${error.message}`, error)));
  });
  return new Promise<IntegrityOutcome>((resolve, reject) => {
    const timer = setTimeout(() => {
      thread.unref();
      resolve('still-running');
      void verdict.then((error) => error && options.onLateDamage?.(error));
    }, options.timeoutMs);
    void verdict.then((error) => {
      clearTimeout(timer);
      if (error) reject(error);
      else resolve('ok');
    });
  });
}

const LOCK_FILE_SUFFIX = '-lock';

/**
 * The names the sidecar's SQLite database uses beside its own file: SQLite's write-ahead log, its
 * shared-memory index and rollback journal, and the lock file of {@link lockDatabase}. Whatever must
 * leave the database alone (LogArtifact's refusal of the sidecar's own files) takes them from here.
 */
export const DATABASE_FILE_SUFFIXES: readonly string[] = Object.freeze([
  '-wal',
  '-shm',
  '-journal',
  LOCK_FILE_SUFFIX,
]);

/** A held database lock. */
export interface DatabaseLock {
  /** The lock file. */
  readonly path: string;
  /** Lets another sidecar take the database. */
  release(): void;
}

/**
 * Takes the lock that keeps a second sidecar off `dbPath`: an exclusive SQLite transaction held on
 * `<dbPath>-lock` for as long as the sidecar runs. The operating system drops it when the process
 * ends, however it ends (SIGKILL included), so a stale lock cannot exist; the lock file stays. Works
 * between processes on one machine and on network file systems with working POSIX locks.
 * Throws DatabaseOpenError 'in_use' when another process holds it.
 */
export function lockDatabase(dbPath: string): DatabaseLock {
  const path = dbPath + LOCK_FILE_SUFFIX;
  const Database = nativeDatabase();
  let db: NativeDatabase;
  try {
    mkdirSync(dirname(resolve(dbPath)), { recursive: true });
    db = new Database(path, { timeout: 0 });
  } catch (error) {
    throw refusalOf(error, path);
  }
  try {
    db.pragma('journal_mode = DELETE');
    db.exec('BEGIN EXCLUSIVE');
  } catch (error) {
    db.close();
    const code = sqliteCode(error) ?? '';
    if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) {
      throw new DatabaseOpenError(
        'in_use',
        dbPath,
        `the database ${dbPath} is in use by another sidecar (it holds ${path}). Two sidecars on one ` +
          "database would answer for each other's jobs: stop the other one (find it with `fuser " +
          `${path}\`), or give this one its own --db`,
        { cause: error },
      );
    }
    throw refusalOf(error, path);
  }
  return {
    path,
    release() {
      db.close();
    },
  };
}
