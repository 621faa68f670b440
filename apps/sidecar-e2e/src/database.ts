// Reads the sidecar's database directly, from outside the sidecar, to check what was really committed
// (and that refused calls changed nothing) — on either dialect: `dbPath` is the sidecar's `--db`, a
// SQLite file or a `postgres://` URL (the PostgreSQL run, vitest.postgres.config.ts).
//
// Rows come back alike on both: SQL is written with `?` placeholders (numbered for PostgreSQL here);
// PostgreSQL's bigint and count(*) arrive as numbers, as SQLite's integers do; json/jsonb columns arrive
// as JSON text, as SQLite's json columns do (compare them parsed: PostgreSQL's jsonb reformats the text);
// timestamps as the driver gives them (a Date on PostgreSQL), so compare those through the read RPCs.

import { TEST_POSTGRES_ENV } from '@training-callbacks/sidecar/testing';
import Database from 'better-sqlite3';
import pg from 'pg';

const POSTGRES_TYPES = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    // int8 (count(*), bigint columns): every value the sidecar stores fits a double.
    if (oid === pg.types.builtins.INT8) return Number;
    if (oid === pg.types.builtins.JSON || oid === pg.types.builtins.JSONB) return (text: string) => text;
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** Whether `dbPath` names a PostgreSQL database rather than a SQLite file. */
export function isPostgres(dbPath: string): boolean {
  return /^postgres(ql)?:\/\//.test(dbPath);
}

/** `?` placeholders as PostgreSQL's `$1, $2, …` (the specs' SQL has no `?` inside literals). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

async function withPostgres<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, types: POSTGRES_TYPES });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}

function withSqlite<T>(dbPath: string, use: (db: Database.Database) => T): T {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return use(db);
  } finally {
    db.close();
  }
}

/** Every row of every table (migration bookkeeping excluded), as comparable text. */
export async function snapshotDatabase(dbPath: string): Promise<string> {
  const text = (table: string, rows: unknown[]) =>
    `${table}: ${JSON.stringify(rows, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))}`;
  if (isPostgres(dbPath)) {
    return withPostgres(dbPath, async (client) => {
      const tables = await client.query<{ name: string }>(
        "select tablename as name from pg_tables where schemaname = current_schema() and tablename not like 'mikro_orm_%' order by tablename",
      );
      const parts: string[] = [];
      for (const { name } of tables.rows) {
        parts.push(text(name, (await client.query(`select * from "${name}" order by 1, 2`)).rows));
      }
      return parts.join('\n');
    });
  }
  return withSqlite(dbPath, (db) => {
    const tables = db
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'mikro_orm_%' order by name",
      )
      .pluck()
      .all() as string[];
    return tables
      .map((table) => text(table, db.prepare(`select * from "${table}" order by 1, 2`).all()))
      .join('\n');
  });
}

/** Rows of one query (`?` placeholders, SQL both dialects understand) against the sidecar's database. */
export async function queryDatabase<T>(dbPath: string, sql: string, ...params: unknown[]): Promise<T[]> {
  if (isPostgres(dbPath)) {
    return withPostgres(dbPath, async (client) => (await client.query(numbered(sql), params)).rows as T[]);
  }
  return withSqlite(dbPath, (db) => db.prepare(sql).all(...params) as T[]);
}

/**
 * Whether this run's sidecars use PostgreSQL (the PostgreSQL run sets TRAINING_CALLBACKS_TEST_POSTGRES):
 * for the few tests about the SQLite file itself inside specs that otherwise run on both dialects.
 */
export const ON_POSTGRES = Boolean(process.env[TEST_POSTGRES_ENV]);
