// Everything PostgreSQL-specific: the pool, the migrations list and the lock that lets many sidecars
// start at once against one database. The store sees a MikroORM instance, as with SQLite.
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { createPostgreSqlTypeParsers } from '@mikro-orm/sql';
import { PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ENTITIES, onPostgresqlMetadata } from './entities.ts';
import { POSTGRESQL_MIGRATIONS } from './migrations/postgresql/index.ts';
import { redactedDatabaseUrl } from './postgres-code.ts';

/** Options of the PostgreSQL dialect. */
export interface PostgresqlDialectOptions {
  /**
   * `postgres://user@host:5432/db?sslmode=…`. node-postgres reads it, so `sslmode` and the other
   * connection parameters it knows are honoured, and libpq's `PGHOST`, `PGPORT`, `PGUSER`,
   * `PGPASSWORD` and `PGDATABASE` fill in whatever the URL leaves out.
   */
  url: string;
  /** Connections of this sidecar's pool (default 10). */
  poolSize?: number;
  debug?: boolean;
}

/** Connections per sidecar by default: RPCs, the MLflow mirror and the sweeps share them. */
export const DEFAULT_POOL_SIZE = 10;

/** How long a new connection may take before the pool gives up (the RPC then answers UNAVAILABLE). */
const CONNECT_TIMEOUT_MS = 5_000;

/**
 * The advisory lock held while migrations run ("TCCM"): sidecars starting together against an empty
 * database would otherwise all create the same tables; the others wait, then find nothing to do.
 */
const MIGRATION_LOCK_KEY = 0x5443434d;

/**
 * PostgreSQL cannot store U+0000 in text, nor the `\u0000` escape in jsonb (22021, 22P05), where SQLite
 * stores both: a traceback or a config value carrying one would make its whole write fail. Such a
 * character is stored as U+FFFD (the replacement character) instead — the one place PostgreSQL keeps a
 * value less faithfully than SQLite. A JSON text has the escape, not the character, and is told apart by
 * parsing (only strings that hold the escape are parsed).
 */
export function withoutNul(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  let text = value.includes('\0') ? value.replaceAll('\0', '\uFFFD') : value;
  if (text.includes('\\u0000')) {
    try {
      JSON.parse(text);
      // An escape preceded by an even number of backslashes (none, or escaped backslashes).
      text = text.replace(/(?<!\\)((?:\\\\)*)\\u0000/g, '$1\\ufffd');
    } catch {
      // Not JSON: the six characters are the user's own text, kept.
    }
  }
  return text;
}

/** node-postgres' client, with every query parameter passed through {@link withoutNul}. */
class NulSafeClient extends pg.Client {
  // biome-ignore lint/suspicious/noExplicitAny: node-postgres' query() is a set of overloads
  override query(...args: any[]): any {
    if (Array.isArray(args[1])) args[1] = args[1].map(withoutNul);
    else if (args[0] && typeof args[0] === 'object' && Array.isArray(args[0].values)) {
      args[0].values = args[0].values.map(withoutNul);
    }
    // biome-ignore lint/suspicious/noExplicitAny: as above
    return (super.query as any)(...args);
  }
}

/** The pool, with MikroORM's type parsers (dates as text; MikroORM converts them). */
function createPool(options: PostgresqlDialectOptions): pg.Pool {
  const types = new pg.TypeOverrides();
  for (const [oid, parser] of Object.entries(createPostgreSqlTypeParsers((s) => pgArray(s)))) {
    types.setTypeParser(Number(oid), parser as (value: string) => unknown);
  }
  const pool = new pg.Pool({
    // pg-pool's documented `Client` option: the clients it creates (see NulSafeClient).
    Client: NulSafeClient,
    connectionString: options.url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: 30_000,
    types,
  });
  // A connection the server drops (a restart, a failover) is reported as an 'error' event, fatal when
  // nobody listens: on the pool for an idle client, on the client itself while it is checked out
  // (pg-pool leaves those to the holder). The query in flight fails on its own (the call answers
  // UNAVAILABLE) and the pool replaces the connection. Without the client's listener a sidecar died
  // with an uncaught 57P01 when PostgreSQL restarted under it (shared-postgres-faults.spec).
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return pool;
}

/** Text arrays as PostgreSQL writes them; only date arrays reach this (none of our columns). */
function pgArray(text: string): string[] {
  return text === '{}' ? [] : text.slice(1, -1).split(',');
}

/** The MikroORM configuration shared by the runtime and the migration generator. */
export function postgresqlConfig(options: PostgresqlDialectOptions, pool = createPool(options)): Options {
  return {
    driver: PostgreSqlDriver,
    // MikroORM wants a name; the connection itself comes from the pool below.
    dbName: databaseName(options.url),
    entities: ENTITIES,
    discovery: { onMetadata: onPostgresqlMetadata },
    extensions: [Migrator],
    debug: options.debug ?? false,
    allowGlobalContext: false,
    driverOptions: new PostgresDialect({ pool }),
    // The store's functions (tc_save_epoch, tc_begin_epoch, tc_append_batch: the hot paths' writes; see
    // hot-path.ts) are written by hand in their migrations, not declared as metadata: schema diffs leave them alone.
    schemaGenerator: { ignoreRoutines: true },
    migrations: {
      tableName: 'mikro_orm_migrations',
      migrationsList: POSTGRESQL_MIGRATIONS,
      snapshot: false,
      silent: !options.debug,
      transactional: true,
      allOrNothing: true,
    },
  };
}

/** The database a URL names, as node-postgres would pick it (the path, else PGDATABASE, else the user). */
function databaseName(url: string): string {
  try {
    const parsed = new URL(url);
    const path = decodeURIComponent(parsed.pathname.replace(/^\//, ''));
    return (
      path ||
      process.env.PGDATABASE ||
      decodeURIComponent(parsed.username) ||
      process.env.PGUSER ||
      'postgres'
    );
  } catch {
    return process.env.PGDATABASE ?? 'postgres';
  }
}

/** Opens the pool, checks the server answers, applies pending migrations under the migration lock. */
export async function openPostgresqlOrm(options: PostgresqlDialectOptions): Promise<MikroORM> {
  const pool = createPool(options);
  let orm: MikroORM;
  try {
    orm = await MikroORM.init(postgresqlConfig(options, pool));
  } catch (error) {
    await pool.end().catch(() => {});
    throw unreachable(options.url, error);
  }
  try {
    const kysely = orm.em.fork().getKysely();
    // A session lock on one connection, released below (or by the server when this process dies).
    await kysely.connection().execute(async (db) => {
      await sql`select pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(db);
      try {
        await orm.migrator.up();
      } finally {
        await sql`select pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(db);
      }
    });
    return orm;
  } catch (error) {
    await orm.close(true);
    throw unreachable(options.url, error);
  }
}

/** A failure to reach or prepare the database, with the URL (password hidden) and what to check. */
function unreachable(url: string, error: unknown): Error {
  const detail = error instanceof Error ? error.message : String(error);
  return new Error(
    `cannot open the PostgreSQL database ${redactedDatabaseUrl(url)}: ${detail} — check that the server ` +
      'runs and accepts connections from here, and the user, password (PGPASSWORD or ~/.pgpass) and sslmode',
    { cause: error },
  );
}
