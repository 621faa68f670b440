// The databases the store's dialect-neutral specs run on: an SQLite file in a temp directory, and a
// fresh database on a real PostgreSQL server (one server per spec file, started on first use).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PostgresServer, startPostgres } from '@training-callbacks/postgres-testing';
import { afterAll } from 'vitest';
import type { StoreDialect } from '../types.ts';

export const DIALECTS: readonly StoreDialect[] = ['sqlite', 'postgresql'];

/** `fresh(dialect)` → the `dbPath` of an empty database of that dialect; all are removed after the file. */
export function testDatabases(): { fresh(dialect: StoreDialect): Promise<string> } {
  let server: Promise<PostgresServer> | undefined;
  const dirs: string[] = [];
  let count = 0;
  afterAll(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    if (server) await (await server).stop();
  });
  return {
    async fresh(dialect) {
      if (dialect === 'postgresql') {
        server ??= startPostgres();
        return (await server).createDatabase(`spec_${process.pid}_${++count}`);
      }
      const dir = mkdtempSync(join(tmpdir(), 'store-spec-'));
      dirs.push(dir);
      return join(dir, 'store.db');
    },
  };
}
