import { startPostgres } from '@training-callbacks/postgres-testing';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { postgresCode, redactedDatabaseUrl } from './postgres-code.ts';

describe('postgresCode', () => {
  it("finds a node-postgres error's SQLSTATE through the causes MikroORM wraps it in", () => {
    const driver = Object.assign(new Error('terminating connection due to administrator command'), {
      code: '57P01',
      severity: 'FATAL',
    });
    expect(postgresCode(driver)).toBe('57P01');
    expect(postgresCode(new Error('query failed', { cause: new Error('wrapped', { cause: driver }) }))).toBe(
      '57P01',
    );
  });

  it('is undefined for errno codes, SQLite codes and errors without a code', () => {
    expect(postgresCode(Object.assign(new Error('EPERM'), { code: 'EPERM', errno: -1 }))).toBeUndefined();
    expect(postgresCode(Object.assign(new Error('full'), { code: 'SQLITE_FULL' }))).toBeUndefined();
    expect(postgresCode(new Error('Connection terminated by the user, unexpectedly'))).toBeUndefined();
    expect(postgresCode('57P01')).toBeUndefined();
  });
});

describe('postgresCode of a lost connection', () => {
  it('is connection_failure (08006) for what node-postgres throws when the server goes away', async () => {
    await using server = await startPostgres();
    const client = new pg.Client({ connectionString: server.url });
    client.on('error', () => {});
    await client.connect();
    const ended = new Promise((resolve) => client.once('end', resolve));
    await server.kill();
    await ended; // the socket closed: the backend is gone too
    // A SIGKILLed server answers nothing: the driver's own, code-less error is all there is.
    const lost = await client.query('select 1').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(lost, String(lost)).toBeInstanceOf(Error);
    expect(postgresCode(lost)).toMatch(/^(08006|57P01|57P02)$/);
    expect(postgresCode(new Error('timeout exceeded when trying to connect'))).toBe('08006');
  });
});

describe('redactedDatabaseUrl', () => {
  it('takes the password out of a PostgreSQL URL and keeps the rest', () => {
    const url = redactedDatabaseUrl('postgresql://tc:s3cret@db:5432/callbacks?sslmode=verify-full');
    expect(url).not.toContain('s3cret');
    expect(url).toContain('tc:***@db:5432/callbacks?sslmode=verify-full');
    expect(redactedDatabaseUrl('postgres://tc@db/callbacks')).toBe('postgres://tc@db/callbacks');
  });

  it('leaves a SQLite path as it is', () => {
    expect(redactedDatabaseUrl('data/training-callbacks.db')).toBe('data/training-callbacks.db');
    expect(redactedDatabaseUrl(':memory:')).toBe(':memory:');
  });
});
