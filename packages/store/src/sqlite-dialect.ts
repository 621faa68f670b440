// Everything SQLite-specific lives here: the driver, the connection pragmas and the migrations list.
// A `postgresql-dialect.ts` with the same shape (plus its own `migrations/postgresql/`) is the seam for
// several sidecars sharing one database; the store itself only sees a MikroORM instance.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, SqliteDriver } from '@mikro-orm/sqlite';
import { ENTITIES } from './entities.ts';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from './sqlite-settings.ts';

/** Options of the SQLite dialect. */
export interface SqliteDialectOptions {
  /** SQLite file path, or ':memory:'. */
  dbPath: string;
  /** 'normal' (default): synchronous=NORMAL; 'full': synchronous=FULL. */
  durability?: 'normal' | 'full';
  /** Log every SQL statement. */
  debug?: boolean;
}

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
  transaction<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R;
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
        return inTransaction(fn) as ReturnType<typeof fn>;
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

/** Opens (creating if needed) the SQLite file, applies the pragmas and the pending migrations. */
export async function openSqliteOrm(options: SqliteDialectOptions): Promise<MikroORM> {
  if (options.dbPath !== ':memory:' && !options.dbPath.startsWith('file:')) {
    mkdirSync(dirname(resolve(options.dbPath)), { recursive: true });
  }
  const orm = await MikroORM.init(sqliteConfig(options));
  try {
    const db: NativeSqlite = await orm.em.getConnection().getNativeClient();
    for (const pragma of sqlitePragmas(options)) {
      db.pragma(pragma);
    }
    cachePreparedStatements(db);
    await orm.migrator.up();
    return orm;
  } catch (error) {
    await orm.close(true);
    throw error;
  }
}
