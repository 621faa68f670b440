import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Status } from '@training-callbacks/grpc-adapter';
import { StoreError } from '@training-callbacks/store';
import { afterAll, describe, expect, it } from 'vitest';
import { createFailureMapper, type StorageFailure } from './failure-status.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'failure-status-'));
const dbPath = path.join(dir, 'db.sqlite');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An error as better-sqlite3 throws it (SqliteError: message + code). */
const sqliteError = (code: string, message = 'boom') => Object.assign(new Error(message), { code });
const errnoError = (code: string, file: string) =>
  Object.assign(new Error(`${code}: on ${file}`), { code, path: file, errno: -28, syscall: 'write' });

describe('the failure table at the error edge', () => {
  const seen: StorageFailure[] = [];
  const artifactStore = path.join(dir, 'artifacts');
  const map = createFailureMapper({
    dbPath,
    artifactStore,
    onStorageFailure: (failure) => seen.push(failure),
  });

  it.each([
    ['SQLITE_FULL', 'UNAVAILABLE', /file system holding it is full/, 'disk_full'],
    ['SQLITE_BUSY', 'UNAVAILABLE', /locked by another process/, 'busy'],
    ['SQLITE_BUSY_SNAPSHOT', 'UNAVAILABLE', /locked by another process/, 'busy'],
    ['SQLITE_LOCKED', 'UNAVAILABLE', /locked by another process/, 'busy'],
    ['SQLITE_IOERR_FSYNC', 'UNAVAILABLE', /I\/O error/, 'io'],
    ['SQLITE_READONLY_DBMOVED', 'UNAVAILABLE', /read-only/, 'read_only'],
    ['SQLITE_CORRUPT', 'DATA_LOSS', /damaged.*Retrying cannot help/, 'damaged'],
    ['SQLITE_CORRUPT_INDEX', 'DATA_LOSS', /damaged/, 'damaged'],
    ['SQLITE_NOTADB', 'DATA_LOSS', /damaged/, 'damaged'],
  ])('%s → %s naming the database', (code, status, message, failure) => {
    const mapped = map(sqliteError(code));
    expect(mapped?.codeName).toBe(status);
    expect(mapped?.message).toContain(dbPath);
    expect(mapped?.message).toMatch(message);
    expect(mapped?.message).toContain(code);
    expect(seen.at(-1)).toBe(failure);
  });

  it('finds the code through wrapping errors (MikroORM keeps the driver error as a cause)', () => {
    const wrapped = new Error('insert failed', { cause: sqliteError('SQLITE_FULL') });
    expect(map(wrapped)?.code).toBe(Status.UNAVAILABLE);
  });

  it('names the file of a file-system error, not the database', () => {
    const file = path.join(dir, 'artifacts', 'job', 'weights.bin');
    const mapped = map(errnoError('ENOSPC', file));
    expect(mapped?.codeName).toBe('UNAVAILABLE');
    expect(mapped?.message).toContain(file);
    expect(mapped?.message).not.toContain(dbPath);
    expect(map(errnoError('EIO', file))?.message).toMatch(/I\/O error/);
    // A failed write on an open stream carries no path: the artifact store is named.
    const onStream = map(
      Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }),
    );
    expect(onStream?.message).toContain(`cannot write ${artifactStore}:`);
  });

  it("maps the store's own refusals and leaves unknown errors to INTERNAL (undefined)", () => {
    expect(map(new StoreError('not_found', 'job "x" not found'))?.codeName).toBe('NOT_FOUND');
    expect(map(new StoreError('invalid_argument', 'bad cursor'))?.codeName).toBe('INVALID_ARGUMENT');
    expect(map(new TypeError('undefined is not a function'))).toBeUndefined();
    expect(map(sqliteError('SQLITE_ERROR', 'no such column'))).toBeUndefined();
    expect(map('a string')).toBeUndefined();
  });
});
