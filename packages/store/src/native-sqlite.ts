// The better-sqlite3 of MikroORM's SQLite driver, for the few places that talk to SQLite without
// MikroORM (the start-up checks, the integrity check thread, the database lock). Imports nothing heavy.
import { createRequire } from 'node:module';

/** The part of better-sqlite3's `Database` used without MikroORM. */
export interface NativeDatabase {
  pragma(source: string, options?: { simple?: boolean }): unknown;
  prepare(sql: string): NativeStatement;
  exec(sql: string): unknown;
  close(): void;
}

/** The part of better-sqlite3's `Statement` used without MikroORM. */
export interface NativeStatement {
  readonly reader: boolean;
  columns(): { name: string }[];
  get(params?: readonly unknown[]): Record<string, unknown> | undefined;
  all(params?: readonly unknown[]): Record<string, unknown>[];
}

export type NativeDatabaseConstructor = new (
  path: string,
  options?: { readonly?: boolean; fileMustExist?: boolean; timeout?: number },
) => NativeDatabase;

/**
 * The better-sqlite3 of MikroORM's SQLite driver, resolved as that driver's own dependency (the driver
 * itself is not loaded): one SQLite library in the process. SQLite's POSIX locks belong to the process,
 * and a second copy of the library beside the store's writer would not know the writer's locks.
 */
export function nativeDatabase(): NativeDatabaseConstructor {
  const require = createRequire(import.meta.url);
  const driver = createRequire(require.resolve('@mikro-orm/sqlite/package.json'));
  return driver('better-sqlite3') as NativeDatabaseConstructor;
}
