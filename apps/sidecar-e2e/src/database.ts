// Reads the sidecar's SQLite file directly, from outside the sidecar, to check what was really
// committed (and that refused calls changed nothing).
import Database from 'better-sqlite3';

/** Every row of every table (migration bookkeeping excluded), as comparable text. */
export function snapshotDatabase(dbPath: string): string {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    const tables = db
      .prepare(
        "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like 'mikro_orm_%' order by name",
      )
      .pluck()
      .all() as string[];
    return tables
      .map((table) => {
        const rows = db.prepare(`select * from "${table}" order by 1, 2`).all();
        return `${table}: ${JSON.stringify(rows, (_k, v) => (Buffer.isBuffer(v) ? v.toString('hex') : v))}`;
      })
      .join('\n');
  } finally {
    db.close();
  }
}

/** Rows of one query against the file. */
export function queryDatabase<T>(dbPath: string, sql: string, ...params: unknown[]): T[] {
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  try {
    return db.prepare(sql).all(...params) as T[];
  } finally {
    db.close();
  }
}
