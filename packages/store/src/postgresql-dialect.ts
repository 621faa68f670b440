// Everything PostgreSQL-specific: the pool, the migrations list and the lock that lets many sidecars
// start at once against one database. The store sees a MikroORM instance, as with SQLite.
import { createHash } from 'node:crypto';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM, type Options, PostgreSqlDriver } from '@mikro-orm/postgresql';
import { createPostgreSqlTypeParsers } from '@mikro-orm/sql';
import { PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { ENTITIES, onPostgresqlMetadata } from './entities.ts';
import { PG_SQL } from './hot-path.ts';
import { POSTGRESQL_MIGRATIONS } from './migrations/postgresql/index.ts';
import { postgresCode, redactedDatabaseUrl } from './postgres-code.ts';

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
  /** Told once when the server lost a prepared statement and the store stops naming them (see storeClient). */
  onNotice?: (message: string) => void;
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

/**
 * The statements the store's connections send as named prepared statements: the hot path's calls
 * ({@link PG_SQL}: the epoch report's `tc_save_epoch`, the epoch begin's `tc_begin_epoch` and the batch
 * append's `tc_append_batch`, every stream's one call). Named, a connection sends the text once
 * and the server parses and plans the call once per connection, where an unnamed statement carries its
 * text (a Parse message) and is parsed again on every call: ~0.05 ms of a 0.85 ms report here
 * (docs/benchmarks.md). The name is the text's hash, so two texts never share a name — also not those
 * of two releases during a rolling upgrade.
 */
const STATEMENT_NAMES: ReadonlyMap<string, string> = new Map(
  Object.values(PG_SQL).map((text) => [text, statementName(text)]),
);

/** The prepared statement's name of `text`: `tc_` and the first 16 hex digits of its SHA-1. */
export function statementName(text: string): string {
  return `tc_${createHash('sha1').update(text).digest('hex').slice(0, 16)}`;
}

/**
 * What a connection that does not keep prepared statements answers: PgBouncer before 1.21 (or without
 * `max_prepared_statements`) in transaction mode hands the next statement to another server connection,
 * which does not know the name (26000, invalid_sql_statement_name) or knows it from another client
 * (42P05, duplicate_prepared_statement). The server refuses the statement before running it.
 */
const LOST_STATEMENT = new Set(['26000', '42P05']);

/** Whether a pool's connections name their statements; off for good once the server lost one. */
class StatementNaming {
  on = true;
  readonly #onNotice: ((message: string) => void) | undefined;

  constructor(onNotice: ((message: string) => void) | undefined) {
    this.#onNotice = onNotice;
  }

  turnOff(error: unknown): void {
    if (!this.on) return;
    this.on = false;
    this.#onNotice?.(
      `PostgreSQL lost a prepared statement of the store (${error instanceof Error ? error.message : String(error)}): ` +
        'a pooler in transaction mode that does not keep them (PgBouncer before 1.21, or without ' +
        'max_prepared_statements) stands in between; this sidecar sends every statement unnamed from now on ' +
        '(correct, ~0.05 ms slower per epoch report) — set max_prepared_statements on the pooler to keep them',
    );
  }
}

/**
 * node-postgres' client as the store uses it: every query parameter passed through {@link withoutNul},
 * and the texts of {@link STATEMENT_NAMES} sent named while the connection is outside a transaction.
 * Only there: a statement the server refuses for its name (see {@link LOST_STATEMENT}) ran nothing, so
 * the client sends it again unnamed at once, and the pool names nothing from then on. Inside a
 * transaction such a refusal would have aborted it, and the transactional paths are not the hot ones.
 */
function storeClient(naming: StatementNaming): typeof pg.Client {
  return class StoreClient extends pg.Client {
    // biome-ignore lint/suspicious/noExplicitAny: node-postgres' query() is a set of overloads
    override query(...args: any[]): any {
      if (Array.isArray(args[1])) args[1] = args[1].map(withoutNul);
      else if (args[0] && typeof args[0] === 'object' && Array.isArray(args[0].values)) {
        args[0].values = args[0].values.map(withoutNul);
      }
      // Named only as Kysely calls it, `query(text, values)` returning a promise.
      const name =
        naming.on && args.length === 2 && Array.isArray(args[1]) ? STATEMENT_NAMES.get(args[0]) : undefined;
      if (name === undefined || this.#inTransaction()) {
        // biome-ignore lint/suspicious/noExplicitAny: as above
        return (super.query as any)(...args);
      }
      const [text, values] = args as [string, unknown[]];
      return super.query({ name, text, values }).catch((error: unknown) => {
        if (!LOST_STATEMENT.has(postgresCode(error) ?? '')) throw error;
        naming.turnOff(error);
        return super.query(text, values);
      });
    }

    /** In a transaction ('T') or a failed one ('E'); null (no query yet since the connect) is idle. */
    #inTransaction(): boolean {
      const status: string | null = this.getTransactionStatus();
      return status === 'T' || status === 'E';
    }
  };
}

/** The pool, with MikroORM's type parsers (dates as text; MikroORM converts them). */
export function createPool(options: PostgresqlDialectOptions): pg.Pool {
  const types = new pg.TypeOverrides();
  for (const [oid, parser] of Object.entries(createPostgreSqlTypeParsers((s) => pgArray(s)))) {
    types.setTypeParser(Number(oid), parser as (value: string) => unknown);
  }
  const pool = new pg.Pool({
    // pg-pool's documented `Client` option: the clients it creates (see storeClient).
    Client: storeClient(new StatementNaming(options.onNotice)),
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
    if (await migrated(orm)) return orm;
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

/**
 * Whether every migration has been applied, read without the migration lock: then a start takes no
 * session lock, which a pooler in transaction mode would leave held on a server connection that other
 * clients then get (the README's "run one sidecar first to migrate"). Only when the migrations table
 * exists: MikroORM would create it on the way, which sidecars starting together must not race for.
 */
async function migrated(orm: MikroORM): Promise<boolean> {
  const rows = await orm.em
    .fork()
    .getConnection()
    .execute<{ exists: boolean }[]>(`select to_regclass('mikro_orm_migrations') is not null as "exists"`);
  return rows[0]?.exists === true && (await orm.migrator.getPending()).length === 0;
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
