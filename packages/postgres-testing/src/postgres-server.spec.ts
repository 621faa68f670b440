import { statSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type PostgresServer, startPostgres } from './index.ts';

/** Whether something accepts TCP connections on the loopback port. */
const listening = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

describe('startPostgres', () => {
  let pg: PostgresServer;
  beforeAll(async () => {
    pg = await startPostgres();
  });
  afterAll(() => pg?.stop());

  it('serves a fresh database on a loopback port, not as root', async () => {
    expect(pg.url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/test`);
    expect(pg.version).toBeGreaterThanOrEqual(13);
    expect(await pg.sql("SELECT current_database(), current_setting('fsync')")).toEqual([['test', 'off']]);
    const [[dataDirectory]] = (await pg.sql("SELECT current_setting('data_directory')")) as [[string]];
    expect(statSync(dataDirectory).uid).not.toBe(0);
    expect(await pg.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")).toEqual([['0']]);
  });

  it('keeps committed data across restart() and kill() + restart(), on the same port', async () => {
    await pg.sql('CREATE TABLE kept (n int); INSERT INTO kept VALUES (1), (2)');
    const port = pg.port;
    await pg.restart({ downMs: 200 });
    expect(pg.port).toBe(port);
    expect(await pg.sql('SELECT sum(n) FROM kept')).toEqual([['3']]);

    await pg.kill();
    expect(pg.running).toBe(false);
    expect(await listening(port)).toBe(false);
    await pg.restart();
    expect(pg.running).toBe(true);
    expect(await pg.sql('SELECT sum(n) FROM kept')).toEqual([['3']]);
  });

  it('is down, connections refused, during restart({ downMs })', async () => {
    const restarting = pg.restart({ downMs: 1_000 });
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await listening(pg.port)).toBe(false);
    await restarting;
    expect(await listening(pg.port)).toBe(true);
  });

  it('creates further databases, also from a template', async () => {
    await pg.sql('CREATE TABLE seeded (n int); INSERT INTO seeded VALUES (7)');
    const url = await pg.createDatabase('copy', { template: 'test' });
    expect(url).toBe(`postgres://postgres@127.0.0.1:${pg.port}/copy`);
    expect(await pg.sql('SELECT n FROM seeded', { database: 'copy' })).toEqual([['7']]);
  });

  it('createTestDatabase() makes a fresh database from a URL alone (as another process would)', async () => {
    const first = new URL(await createTestDatabase(pg.url));
    const second = new URL(await createTestDatabase(pg.url));
    expect(first.host).toBe(`127.0.0.1:${pg.port}`);
    expect(first.pathname).not.toBe(second.pathname);
    const name = first.pathname.slice(1);
    expect(await pg.sql(`SELECT count(*) FROM pg_database WHERE datname = '${name}'`)).toEqual([['1']]);
  });

  it('reports SQL errors with the server message', async () => {
    await expect(pg.sql('SELECT * FROM no_such_table')).rejects.toThrow(
      /relation "no_such_table" does not exist/,
    );
  });

  it('two servers run side by side, and stop() removes everything', async () => {
    const other = await startPostgres({ database: 'other', settings: { max_connections: 20 } });
    expect(other.port).not.toBe(pg.port);
    expect(await other.sql("SELECT current_setting('max_connections')", { database: 'other' })).toEqual([
      ['20'],
    ]);
    await other.stop();
    await other.stop();
    expect(await listening(other.port)).toBe(false);
  });
});

describe('without server binaries', () => {
  it('says what to install', async () => {
    const saved = process.env.PG_BIN;
    process.env.PG_BIN = '/nonexistent';
    try {
      await expect(startPostgres()).rejects.toThrow(/apt-get install --no-install-recommends postgresql/);
    } finally {
      if (saved === undefined) delete process.env.PG_BIN;
      else process.env.PG_BIN = saved;
    }
  });
});
