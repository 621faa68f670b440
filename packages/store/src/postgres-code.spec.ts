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
    expect(postgresCode(new Error('Connection terminated unexpectedly'))).toBeUndefined();
    expect(postgresCode('57P01')).toBeUndefined();
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
