// Everything SQLite-specific lives here: the driver, the connection pragmas and the migrations list.
// A `postgresql-dialect.ts` with the same shape (plus its own `migrations/postgresql/`) is the seam for
// several sidecars sharing one database; the store itself only sees a MikroORM instance.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, SqliteDriver } from '@mikro-orm/sqlite';
import { ENTITIES } from './entities.ts';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index.ts';
import {
  checkIntegrity,
  type DatabaseFileKind,
  inspectDatabaseFile,
  markAsOurs,
  refusalOf,
  SIDECAR_APPLICATION_ID,
} from './sqlite-file.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from './sqlite-settings.ts';
import type { StoreOptions } from './types.ts';

/** Options of the SQLite dialect. */
export interface SqliteDialectOptions {
  /** SQLite file path, or ':memory:'. */
  dbPath: string;
  /** 'normal' (default): synchronous=NORMAL; 'full': synchronous=FULL. */
  durability?: 'normal' | 'full';
  /** Log every SQL statement. */
  debug?: boolean;
  /** See {@link StoreOptions.integrityCheck}. */
  integrityCheck?: StoreOptions['integrityCheck'];
}

/** How long opening waits for the integrity check by default. */
const INTEGRITY_CHECK_TIMEOUT_MS = 10_000;

/** The store's probe write: the header's application id, rewritten with its own value. */
export const PROBE_WRITE_SQL = `PRAGMA application_id = ${SIDECAR_APPLICATION_ID}`;

/** The pragmas applied to every new connection (see README, "Why these pragmas"). */
export function sqlitePragmas(options: Pick<SqliteDialectOptions, 'durability'>): string[] {
  return [
    'journal_mode = WAL',
    `synchronous = ${options.durability === 'full' ? 'FULL' : 'NORMAL'}`,
    `busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`,
    'foreign_keys = ON',
  ];
}

/** The part of better-sqlite3's `Database` (reached through MikroORM) used here. */
interface NativeSqlite {
  pragma(source: string): unknown;
  prepare(sql: string): unknown;
  readonly inTransaction: boolean;
  transaction<A extends unknown[], R>(
    fn: (...args: A) => R,
  ): ((...args: A) => R) & { immediate: (...args: A) => R };
}

/** The part of better-sqlite3's `Statement` used by the hot paths. */
interface NativeStatement {
  readonly reader: boolean;
  get(params: readonly unknown[]): Record<string, unknown> | undefined;
  all(params: readonly unknown[]): Record<string, unknown>[];
  run(params: readonly unknown[]): { changes: number };
}

/** Runs precompiled statements synchronously (see {@link HotPathExecutor}). */
export interface StatementRunner {
  /** The first row, or undefined. */
  get(sql: string, params: readonly unknown[]): Record<string, unknown> | undefined;
  /** Every row (a statement with RETURNING). */
  all(sql: string, params: readonly unknown[]): Record<string, unknown>[];
  /** Runs a write; returns how many rows it changed. */
  run(sql: string, params: readonly unknown[]): number;
}

/**
 * Runs the store's precompiled hot-path statements (SQL compiled once by Kysely, see
 * `precompiled.ts`) on the native better-sqlite3 database, synchronously, while holding Kysely's
 * connection: Kysely's SQLite connection mutex is what serializes every other query and transaction
 * (MikroORM's included), so nothing can interleave with the statements run here.
 */
export interface HotPathExecutor {
  /** Runs `fn` in one transaction (rolled back if it throws). `fn` must be synchronous. */
  transaction<T>(fn: (runner: StatementRunner) => T): Promise<T>;
  /** Runs `fn` without a transaction of its own (each statement commits by itself). */
  run<T>(fn: (runner: StatementRunner) => T): Promise<T>;
}

/** The hot-path executor of a store opened with {@link openSqliteOrm}. */
export async function sqliteHotPathExecutor(orm: MikroORM): Promise<HotPathExecutor> {
  const db: NativeSqlite = await orm.em.getConnection().getNativeClient();
  // MikroORM's Kysely client itself (no plugin): only its connection is used.
  const kysely = (orm.em.fork() as unknown as { getKysely(): KyselyConnections }).getKysely();
  const statements = new Map<string, NativeStatement>();
  const statement = (sql: string): NativeStatement => {
    let stmt = statements.get(sql);
    if (stmt === undefined) {
      stmt = db.prepare(sql) as NativeStatement;
      statements.set(sql, stmt);
    }
    return stmt;
  };
  const runner: StatementRunner = {
    get: (sql, params) => statement(sql).get(params),
    all: (sql, params) => statement(sql).all(params),
    run: (sql, params) => statement(sql).run(params).changes,
  };
  // better-sqlite3's transaction(): BEGIN, COMMIT, or ROLLBACK if fn throws. It would nest into a
  // SAVEPOINT if a transaction were already open, which holding Kysely's connection rules out; the
  // check below makes sure of it rather than join someone else's transaction.
  const inTransaction = db.transaction(<T>(fn: (runner: StatementRunner) => T): T => fn(runner));
  const notInTransaction = (): void => {
    if (db.inTransaction) {
      throw new Error('store hot path: a transaction is already open on the SQLite connection');
    }
  };
  return {
    transaction: (fn) =>
      kysely.connection().execute(async () => {
        notInTransaction();
        // BEGIN IMMEDIATE, as every transaction (see beginImmediately).
        return inTransaction.immediate(fn) as ReturnType<typeof fn>;
      }),
    run: (fn) =>
      kysely.connection().execute(async () => {
        notInTransaction();
        return fn(runner);
      }),
  };
}

/** Kysely's `connection()`: holds the (single, mutex-guarded) connection while `fn` runs. */
interface KyselyConnections {
  connection(): { execute<T>(fn: (db: unknown) => Promise<T>): Promise<T> };
}

/**
 * Makes every transaction that Kysely (and MikroORM through it) begins a BEGIN IMMEDIATE. A deferred
 * BEGIN takes the write lock only at its first write, after reading; SQLite then cannot wait for a
 * lock another process holds (it answers SQLITE_BUSY at once rather than risk a deadlock), so the
 * busy_timeout never applies. Taking the write lock at BEGIN makes a locked database wait up to
 * busy_timeout and then fail cleanly. The sidecar is the only writer, so nothing of its own waits.
 */
function beginImmediately(db: NativeSqlite): void {
  const prepare = db.prepare.bind(db);
  db.prepare = (sql: string): unknown => prepare(sql === 'begin' ? 'begin immediate' : sql);
}

/** Most statements kept prepared; the hot paths use a handful. */
const STATEMENT_CACHE_SIZE = 64;
/** Longer statements are MikroORM's inlined one-offs (values spelled out): never worth caching. */
const STATEMENT_CACHE_MAX_SQL_LENGTH = 4096;

/**
 * Reuses prepared statements. Kysely's SQLite driver calls `db.prepare(sql)` for every query, and
 * preparing costs more than running a short statement; the Kysely queries (appendBatchBlocks,
 * putArtifacts, the outbox) bind their parameters, so their SQL text repeats and a small LRU cache removes
 * nearly all of that cost. Safe because Kysely's connection mutex runs one statement at a time, no
 * code path here iterates a statement lazily, and SQLite re-prepares a statement whose schema changed.
 */
function cachePreparedStatements(db: NativeSqlite): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, unknown>();
  db.prepare = (sql: string): unknown => {
    const cached = cache.get(sql);
    if (cached) {
      cache.delete(sql);
      cache.set(sql, cached);
      return cached;
    }
    const statement = prepare(sql);
    if (sql.length <= STATEMENT_CACHE_MAX_SQL_LENGTH) {
      cache.set(sql, statement);
      if (cache.size > STATEMENT_CACHE_SIZE) {
        cache.delete(cache.keys().next().value!);
      }
    }
    return statement;
  };
}

/** The MikroORM configuration shared by the runtime and the migration generator. */
export function sqliteConfig(options: SqliteDialectOptions): Options {
  return {
    driver: SqliteDriver,
    dbName: options.dbPath,
    entities: ENTITIES,
    extensions: [Migrator],
    debug: options.debug ?? false,
    allowGlobalContext: false,
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: SQLITE_MIGRATIONS,
      // At run time the snapshot is neither read nor written (dist may be read-only).
      snapshot: false,
      silent: !options.debug,
      transactional: true,
      allOrNothing: true,
    },
  };
}

/**
 * Opens (creating if needed) the SQLite file, applies the pragmas and the pending migrations. An
 * existing file is first inspected and checked: another application's SQLite file, a file that is
 * not SQLite and a damaged database are refused (DatabaseOpenError) before anything writes to them.
 */
export async function openSqliteOrm(options: SqliteDialectOptions): Promise<MikroORM> {
  const onDisk = options.dbPath !== ':memory:' && !options.dbPath.startsWith('file:');
  let kind: DatabaseFileKind = 'new';
  if (onDisk) {
    try {
      mkdirSync(dirname(resolve(options.dbPath)), { recursive: true });
    } catch (error) {
      throw refusalOf(error, options.dbPath);
    }
    kind = inspectDatabaseFile(options.dbPath, SQLITE_MIGRATIONS[0]!.name);
  }
  // The check runs on its own thread while MikroORM starts (which only reads); nothing writes
  // before its verdict.
  const timeoutMs = options.integrityCheck?.timeoutMs ?? INTEGRITY_CHECK_TIMEOUT_MS;
  const onLateDamage = options.integrityCheck?.onLateDamage;
  // Settled at once into its refusal (or undefined), so a refusal that arrives while MikroORM starts is
  // never an unhandled rejection.
  const refused: Promise<unknown> =
    onDisk && kind !== 'new' && timeoutMs > 0
      ? checkIntegrity(options.dbPath, { timeoutMs, ...(onLateDamage && { onLateDamage }) }).then(
          () => undefined,
          (error: unknown) => error,
        )
      : Promise.resolve(undefined);
  let orm: MikroORM;
  try {
    orm = await MikroORM.init(sqliteConfig(options));
  } catch (error) {
    // A damaged file's own refusal says more than the driver's error.
    throw (await refused) ?? refusalOf(error, options.dbPath);
  }
  const damage = await refused;
  if (damage) {
    await orm.close(true);
    throw damage;
  }
  try {
    const db: NativeSqlite = await orm.em.getConnection().getNativeClient();
    // The mark comes first, so a file this store has begun to write is never taken for a foreign one.
    if (kind !== 'ours') markAsOurs(db);
    for (const pragma of sqlitePragmas(options)) {
      db.pragma(pragma);
    }
    beginImmediately(db);
    cachePreparedStatements(db);
    await orm.migrator.up();
    return orm;
  } catch (error) {
    await orm.close(true);
    throw refusalOf(error, options.dbPath);
  }
}
