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

  /** An error as node-postgres throws it for a server's answer (DatabaseError: message, code, severity). */
  const postgresError = (code: string, message = 'boom', severity = 'ERROR') =>
    Object.assign(new Error(message), { code, severity });
  const pgUrl = 'postgres://tc:s3cret@db.internal:5432/callbacks?sslmode=require';
  const pgMap = createFailureMapper({ dbPath: pgUrl, artifactStore, onStorageFailure: (f) => seen.push(f) });

  it.each([
    ['57P01', 'terminating connection due to administrator command', 'unreachable'],
    ['57P03', 'the database system is starting up', 'unreachable'],
    ['08006', 'connection failure', 'unreachable'],
    ['53300', 'sorry, too many clients already', 'unreachable'],
    ['53100', 'could not extend file: No space left on device', 'disk_full'],
    ['55P03', 'canceling statement due to lock timeout', 'busy'],
    ['40P01', 'deadlock detected', 'busy'],
    ['40001', 'could not serialize access due to concurrent update', 'busy'],
    ['25006', 'cannot execute INSERT in a read-only transaction', 'read_only'],
    ['XX001', 'invalid page in block 4 of relation base/16384/16385', 'damaged'],
  ])(
    'PostgreSQL %s (%s) → the %s row, naming the database without its password',
    (code, message, failure) => {
      const mapped = pgMap(new Error('insert failed', { cause: postgresError(code, message, 'FATAL') }));
      expect(mapped?.codeName).toBe(failure === 'damaged' ? 'DATA_LOSS' : 'UNAVAILABLE');
      expect(mapped?.message).toContain(code);
      expect(mapped?.message).toContain('db.internal:5432/callbacks');
      expect(mapped?.message).not.toContain('s3cret');
      expect(seen.at(-1)).toBe(failure);
    },
  );

  it('a lock held too long says how to find its holder on that database: fuser for a file, pg_locks for PostgreSQL', () => {
    const onPostgres = pgMap(postgresError('40P01', 'deadlock detected'))?.message;
    expect(onPostgres).toContain('pg_locks');
    expect(onPostgres).not.toContain('fuser');
    const onFile = map(sqliteError('SQLITE_BUSY', 'database is locked'))?.message;
    expect(onFile).toContain('`fuser ');
    expect(onFile).not.toContain('pg_locks');
  });

  it('a connection node-postgres lost (no SQLSTATE) is the database being unreachable', () => {
    const lost = pgMap(new Error('write failed', { cause: new Error('Connection terminated unexpectedly') }));
    expect(lost?.codeName).toBe('UNAVAILABLE');
    expect(lost?.message).toContain('cannot be reached or closed the connection');
    expect(seen.at(-1)).toBe('unreachable');
  });

  it('a refused or reset connection is the database being unreachable, not an artifact file', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), {
      code: 'ECONNREFUSED',
      errno: -111,
      syscall: 'connect',
    });
    const mapped = pgMap(refused);
    expect(mapped?.codeName).toBe('UNAVAILABLE');
    expect(mapped?.message).toMatch(/reconnects by itself/);
    expect(mapped?.message).toContain('db.internal');
    expect(mapped?.message).not.toContain(artifactStore);
    expect(pgMap(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }))?.codeName).toBe(
      'UNAVAILABLE',
    );
  });

  it('a server error that is the request or a bug stays INTERNAL (undefined); an errno code is no SQLSTATE', () => {
    expect(pgMap(postgresError('42703', 'column "x" does not exist'))).toBeUndefined();
    expect(pgMap(postgresError('23505', 'duplicate key value violates unique constraint'))).toBeUndefined();
    // Five capital letters but no severity: the errno code of a file, not a PostgreSQL answer.
    const file = path.join(artifactStore, 'job', 'w.bin');
    expect(pgMap(errnoError('EROFS', file))?.message).toContain(file);
  });

  it("maps the store's own refusals and leaves unknown errors to INTERNAL (undefined)", () => {
    expect(map(new StoreError('not_found', 'job "x" not found'))?.codeName).toBe('NOT_FOUND');
    expect(map(new StoreError('invalid_argument', 'bad cursor'))?.codeName).toBe('INVALID_ARGUMENT');
    expect(map(new StoreError('ended', 'job "j" has ended'))?.codeName).toBe('FAILED_PRECONDITION');
    expect(map(new StoreError('too_large', 'more than 65536 items'))?.codeName).toBe('RESOURCE_EXHAUSTED');
    expect(map(new TypeError('undefined is not a function'))).toBeUndefined();
    expect(map(sqliteError('SQLITE_ERROR', 'no such column'))).toBeUndefined();
    expect(map('a string')).toBeUndefined();
  });
});
