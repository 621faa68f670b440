// Everything SQLite-specific lives here: the driver, the connection pragmas and the migrations list.
// A `postgresql-dialect.ts` with the same shape (plus its own `migrations/postgresql/`) is the seam for
// several sidecars sharing one database; the store itself only sees a MikroORM instance.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, SqliteDriver } from '@mikro-orm/sqlite';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Driver,
  SqliteDriver as KyselySqliteDriver,
  type SqliteDatabase,
  SqliteDialect,
  type SqliteDialectConfig,
  type SqliteStatement,
} from 'kysely';
import { ENTITIES } from './entities.ts';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index.ts';
import { nativeDatabase } from './native-sqlite.ts';
import { FALLBACK_AUTOCHECKPOINT_PAGES, WalCheckpoints } from './sqlite-checkpoints.ts';
import {
  checkIntegrity,
  type DatabaseFileKind,
  inspectDatabaseFile,
  markAsOurs,
  refusalOf,
  SIDECAR_APPLICATION_ID,
} from './sqlite-file.ts';
import { SQLITE_BUSY_TIMEOUT_MS } from './sqlite-settings.ts';
import { SqliteTransactions } from './sqlite-transactions.ts';
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

/** The `synchronous` setting of a durability. */
function synchronousOf(options: Pick<SqliteDialectOptions, 'durability'>): 'NORMAL' | 'FULL' {
  return options.durability === 'full' ? 'FULL' : 'NORMAL';
}

/** The pragmas applied to every new connection (see README, "Why these pragmas"). */
export function sqlitePragmas(options: Pick<SqliteDialectOptions, 'durability'>): string[] {
  return [
    'journal_mode = WAL',
    `synchronous = ${synchronousOf(options)}`,
    `busy_timeout = ${SQLITE_BUSY_TIMEOUT_MS}`,
    'foreign_keys = ON',
  ];
}

/** The part of better-sqlite3's `Database` the store's connection uses. */
interface BetterSqlite3 {
  readonly inTransaction: boolean;
  pragma(source: string): unknown;
  prepare(sql: string): SqliteStatement;
  close(): void;
}

/** Most statements kept prepared; the store's queries are a few dozen distinct texts. */
const STATEMENT_CACHE_SIZE = 64;
/** Longer statements are MikroORM's inlined one-offs (values spelled out): never worth caching. */
const STATEMENT_CACHE_MAX_SQL_LENGTH = 4096;

/**
 * The database as Kysely's SQLite driver sees it, with prepared statements reused. Kysely prepares
 * every query anew, and preparing costs more than running a short upsert; the store binds its values,
 * so its SQL texts repeat and a small LRU cache removes nearly all of that cost. Safe because Kysely
 * runs one query at a time on the connection (its mutex), nothing iterates a statement lazily, and
 * SQLite re-prepares a statement whose schema changed.
 */
function statementCachingDatabase(db: BetterSqlite3): SqliteDatabase {
  const cache = new Map<string, SqliteStatement>();
  return {
    close: () => db.close(),
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached) {
        cache.delete(sql);
        cache.set(sql, cached);
        return cached;
      }
      const statement = db.prepare(sql);
      if (sql.length <= STATEMENT_CACHE_MAX_SQL_LENGTH) {
        cache.set(sql, statement);
        if (cache.size > STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value!);
      }
      return statement;
    },
  };
}

/**
 * Kysely's SQLite driver with every transaction a BEGIN IMMEDIATE. A deferred BEGIN takes the write
 * lock only at its first write, after reading; SQLite then cannot wait for a lock another process holds
 * (it answers SQLITE_BUSY at once rather than risk a deadlock), so busy_timeout never applies. Taking
 * the write lock at BEGIN makes a locked database wait up to busy_timeout and then fail cleanly, and
 * it is what makes a status read inside a write transaction the truth until the commit.
 */
class ImmediateSqliteDriver extends KyselySqliteDriver {
  readonly #db: BetterSqlite3;
  readonly #checkpoints: WalCheckpoints | undefined;
  readonly #transactions: SqliteTransactions;
  constructor(
    config: SqliteDialectConfig,
    db: BetterSqlite3,
    checkpoints: WalCheckpoints | undefined,
    transactions: SqliteTransactions,
  ) {
    super(config);
    this.#db = db;
    this.#checkpoints = checkpoints;
    this.#transactions = transactions;
  }

  /** The checkpoint thread's connection closes first: the writer's close then checkpoints everything. */
  override async destroy(): Promise<void> {
    await this.#checkpoints?.stop();
    await super.destroy();
  }

  override async commitTransaction(connection: DatabaseConnection): Promise<void> {
    this.#transactions.ended();
    await super.commitTransaction(connection);
    this.#checkpoints?.committed();
  }

  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    this.#transactions.began(connection);
  }

  /**
   * Rolls back only a transaction that is still open: SQLite ends it by itself on some errors
   * (SQLITE_FULL, SQLITE_IOERR, …), and a ROLLBACK then fails with "no transaction is active" — an
   * error that would replace the one that says what happened (the failure table needs its code).
   */
  override async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    this.#transactions.ended();
    if (this.#db.inTransaction) await super.rollbackTransaction(connection);
  }
}

/** Kysely's SQLite dialect on the store's own better-sqlite3 connection (see above). */
class StoreSqliteDialect extends SqliteDialect {
  /** Its transactions' connections, for the hot paths' statements (sqlite-transactions.ts). */
  readonly transactions = new SqliteTransactions();
  readonly #config: SqliteDialectConfig;
  readonly #db: BetterSqlite3;
  readonly #checkpoints: WalCheckpoints | undefined;
  constructor(db: BetterSqlite3, checkpoints?: WalCheckpoints) {
    const config = { database: statementCachingDatabase(db) };
    super(config);
    this.#config = config;
    this.#db = db;
    this.#checkpoints = checkpoints;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config, this.#db, this.#checkpoints, this.transactions);
  }
}

/**
 * The MikroORM configuration shared by the runtime and the migration generator. The store owns the
 * better-sqlite3 connection (`database`, opened here when not given) and hands MikroORM a Kysely
 * dialect on it, MikroORM's documented seam (`driverOptions`) for bringing one's own driver.
 */
export function sqliteConfig(
  options: SqliteDialectOptions,
  database?: BetterSqlite3,
  checkpoints?: WalCheckpoints,
): Options {
  const db = database ?? (new (nativeDatabase())(options.dbPath) as unknown as BetterSqlite3);
  return {
    driver: SqliteDriver,
    dbName: options.dbPath,
    entities: ENTITIES,
    extensions: [Migrator],
    debug: options.debug ?? false,
    allowGlobalContext: false,
    driverOptions: new StoreSqliteDialect(db, checkpoints),
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
  let db: BetterSqlite3 | undefined;
  const checkpoints = new WalCheckpoints();
  try {
    db = new (nativeDatabase())(options.dbPath) as unknown as BetterSqlite3;
    orm = await MikroORM.init(sqliteConfig(options, db, checkpoints));
  } catch (error) {
    db?.close();
    // A damaged file's own refusal says more than the driver's error.
    throw (await refused) ?? refusalOf(error, options.dbPath);
  }
  const damage = await refused;
  if (damage) {
    await orm.close(true);
    throw damage;
  }
  try {
    // The mark comes first, so a file this store has begun to write is never taken for a foreign one.
    if (kind !== 'ours') markAsOurs(db);
    for (const pragma of sqlitePragmas(options)) {
      db.pragma(pragma);
    }
    await orm.migrator.up();
    if (onDisk) {
      db.pragma(`wal_autocheckpoint = ${FALLBACK_AUTOCHECKPOINT_PAGES}`);
      checkpoints.watch(options.dbPath, synchronousOf(options));
    }
    return orm;
  } catch (error) {
    await orm.close(true);
    throw refusalOf(error, options.dbPath);
  }
}
