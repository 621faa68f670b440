// The PostgreSQL dialect through a server restart: a call whose connection the server closes fails with a
// connection error (the sidecar answers UNAVAILABLE), the process lives on, and the pool reconnects; and a
// report behind a held row lock, bounded by the database's lock_timeout.
import { type PostgresServer, startPostgres } from '@training-callbacks/postgres-testing';
import pg from 'pg';
import { expect, it } from 'vitest';
import { FEED_LOCK_KEY } from './hot-path.ts';
import { openStore } from './index.ts';
import { postgresCode } from './postgres-code.ts';
import { sampleJob } from './testing.ts';

it('survives a restart of PostgreSQL under a transaction in flight, and reconnects by itself', async () => {
  await using server = await startPostgres();
  const store = await openStore({ dbPath: server.url });
  try {
    await store.createOrGetJob(sampleJob('j'));
    let holding!: () => void;
    const held = new Promise<void>((resolve) => (holding = resolve));
    // The best-epoch rule runs inside the report's transaction: it holds a checked-out connection
    // while the server goes away (the case that once killed the process with an uncaught 57P01).
    const report = store.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: {},
      timestamp: new Date(),
      best: async () => {
        holding();
        await new Promise((resolve) => setTimeout(resolve, 1_500));
        return { epoch: 0, value: 0.5 };
      },
    });
    await held;
    const restarted = server.restart({ downMs: 500 });
    const failure = await report.then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(postgresCode(failure)).toMatch(/^(57P01|08006|08003)$/);
    await restarted;
    // The pool replaces the broken connection: the next calls work (the report, resent, is stored).
    let listed: unknown;
    for (let i = 0; i < 20 && listed === undefined; i++) {
      listed = await store
        .listEpochs('j')
        .catch(() => new Promise((resolve) => setTimeout(() => resolve(undefined), 250)));
    }
    await store.saveEpoch({
      jobId: 'j',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: {},
      timestamp: new Date(),
      best: null,
    });
    expect((await store.listEpochs('j')).map((e) => e.epoch)).toEqual([0]);
  } finally {
    await store.close();
  }
});

/**
 * A store on a fresh database of a server of its own, and another session on that database (another
 * sidecar, an operator's psql); `prepare` runs on the server before the store opens. Disposing it ends
 * the session, closes the store and stops the server.
 */
async function storeBesideSession(database: string, prepare?: (server: PostgresServer) => Promise<unknown>) {
  const server = await startPostgres();
  const url = await server.createDatabase(database);
  await prepare?.(server);
  const store = await openStore({ dbPath: url });
  const session = new pg.Client({ connectionString: url });
  await session.connect();
  return {
    store,
    session,
    async [Symbol.asyncDispose]() {
      await session.end();
      await store.close();
      await server.stop();
    },
  };
}

it("bounds a report's wait for a held row lock by the database's lock_timeout (55P03) and writes nothing", async () => {
  // The README's advice for operators: the setting on the database (or role), which poolers in
  // transaction mode pass through, where a startup parameter would be refused.
  await using opened = await storeBesideSession('locks', (server) =>
    server.sql(`ALTER DATABASE locks SET lock_timeout = '300ms'`, { database: 'postgres' }),
  );
  const { store, session: holder } = opened;
  await store.createOrGetJob(sampleJob('held'));
  // Another session (a frozen sidecar, an operator's psql) holds the job row.
  await holder.query('BEGIN');
  await holder.query(`SELECT 1 FROM training_job WHERE job_id = 'held' FOR UPDATE`);
  const started = Date.now();
  const report = () =>
    store.saveEpoch({
      jobId: 'held',
      epoch: 0,
      metrics: { accuracy: 0.5 },
      columns: {},
      timestamp: new Date(),
      best: null,
    });
  const failure = await report().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(postgresCode(failure)).toBe('55P03');
  // At most two bounded waits (the report decided from a remembered version, then the locked way).
  expect(Date.now() - started).toBeLessThan(5_000);
  await holder.query('ROLLBACK');
  expect(await store.listEpochs('held')).toEqual([]);
  // Once the lock is gone the resent report is stored.
  await report();
  expect((await store.listEpochs('held')).map((e) => e.epoch)).toEqual([0]);
});

it("lets another sidecar's feed write of a job pass an end waiting for the feed's order lock (no deadlock)", async () => {
  await using opened = await storeBesideSession('feed_order');
  const { store, session: other } = opened;
  await store.createOrGetJob(sampleJob('j'));
  // Another sidecar's transaction holds the feed's order lock (it is about to write its feed rows)…
  await other.query('BEGIN');
  await other.query('SELECT pg_advisory_xact_lock($1)', [FEED_LOCK_KEY]);
  // …while this store ends the job: the end locks the job row, then waits for the order lock.
  const ending = store.endJob({
    jobId: 'j',
    status: 'completed',
    finalMetrics: {},
    errorMessage: '',
    endedAt: new Date(),
  });
  const waitingForOrderLock = async () =>
    (await other.query(`SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`))
      .rows[0].n;
  for (let i = 0; (await waitingForOrderLock()) === 0; i++) {
    if (i > 500) throw new Error('the end never waited for the feed order lock');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  // The other transaction writes the job's feed row: its foreign-key check takes the row's key-share
  // lock, which the end's row lock must not block (PostgreSQL would abort one of them, 40P01).
  await other.query(`INSERT INTO store_change (job_id, kind, ref) VALUES ('j', 'mlflow', NULL)`);
  await other.query('COMMIT');
  expect((await ending).status).toBe('completed');
});
