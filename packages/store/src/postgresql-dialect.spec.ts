// The PostgreSQL dialect through a server restart: a call whose connection the server closes fails with a
// connection error (the sidecar answers UNAVAILABLE), the process lives on, and the pool reconnects; and a
// report behind a held row lock, bounded by the database's lock_timeout.
import { type PostgresServer, startPgbouncer, startPostgres } from '@training-callbacks/postgres-testing';
import pg from 'pg';
import { expect, it, vi } from 'vitest';
import { HotPath, PG_SQL } from './hot-path.ts';
import { openStore, StoreError } from './index.ts';
import { postgresCode } from './postgres-code.ts';
import { createPool, openPostgresqlOrm, statementName } from './postgresql-dialect.ts';
import { StoreContext } from './store-context.ts';
import { sampleJob } from './testing.ts';

it('survives a restart of PostgreSQL under a transaction in flight, and reconnects by itself', async () => {
  await using server = await startPostgres();
  // The job comes from another store (another sidecar): this one's first report of it takes the locked path.
  const creator = await openStore({ dbPath: server.url });
  await creator.createOrGetJob(sampleJob('j'));
  await creator.close();
  const store = await openStore({ dbPath: server.url });
  try {
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
    url,
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

it('never lets a feed reader pass a transaction still running: a later commit waits behind it, and nothing is missed', async () => {
  await using opened = await storeBesideSession('feed_horizon');
  const { store, session: other } = opened;
  await store.createOrGetJob(sampleJob('j'));
  const start = await store.headSeq();
  // Another sidecar's transaction appends a feed row and stays open (its seq is below every later one)…
  await other.query('BEGIN');
  await other.query(`INSERT INTO store_change (job_id, kind, ref) VALUES ('j', 'mlflow', NULL)`);
  const held = Number((await other.query('SELECT max(seq) AS seq FROM store_change')).rows[0].seq);
  // …while this store commits later writes: a reader sees none of them yet, and the head stays below.
  for (let epoch = 0; epoch < 3; epoch++) await store.beginEpoch('j', epoch, new Date());
  await store.saveEpoch({
    jobId: 'j',
    epoch: 0,
    metrics: { accuracy: 0.5 },
    columns: {},
    timestamp: new Date(),
    best: null,
  });
  expect(await store.readChanges({ afterSeq: start, limit: 100 })).toEqual([]);
  expect(await store.headSeq()).toBeLessThan(held);
  // Once it commits, the reader gets its row first, then the later ones, in seq order.
  await other.query('COMMIT');
  const changes = await store.readChanges({ afterSeq: start, limit: 100 });
  expect(changes.map((c) => [c.kind, c.ref])).toEqual([
    ['mlflow', null],
    ['epoch', 0],
  ]);
  expect(changes[0]!.seq).toBe(held);
  // With nothing running, the head may pass the last row (no transaction can write below it any more).
  const head = await store.headSeq();
  expect(head).toBeGreaterThanOrEqual(changes.at(-1)!.seq);
  expect(await store.readChanges({ afterSeq: head, limit: 100 })).toEqual([]);
});

it('numbers the feed rows of one transaction in order after its own base, and refuses a write of more than one may append', async () => {
  await using opened = await storeBesideSession('feed_rows');
  const { store, session: other } = opened;
  await store.createOrGetJob(sampleJob('j'));
  await other.query('BEGIN');
  await other.query(
    `INSERT INTO store_change (job_id, kind, ref) SELECT 'j', 'epoch', n FROM generate_series(1, 3) AS n`,
  );
  const seqs = (
    await other.query('SELECT seq FROM store_change WHERE kind = $1 ORDER BY seq', ['epoch'])
  ).rows.map((r) => Number(r.seq));
  expect(seqs.slice(1).map((seq, i) => seq - seqs[i]!)).toEqual([1, 1]);
  // The 65,537th row of one transaction is refused by the database itself (program_limit_exceeded).
  const overflow = await other
    .query(
      `INSERT INTO store_change (job_id, kind, ref) SELECT 'j', 'epoch', n FROM generate_series(1, 65534) AS n`,
    )
    .then(
      () => undefined,
      (error: { code?: string }) => error.code,
    );
  expect(overflow).toBe('54000');
  await other.query('ROLLBACK');
  // The store refuses such a write before it writes anything, with what to do.
  const blocks = Array.from({ length: 65_537 }, (_, i) => ({
    epoch: 0,
    names: ['loss'],
    steps: BigInt64Array.of(BigInt(i)),
    values: Float64Array.of(0.5),
  }));
  await expect(store.appendBatchBlocks('j', blocks)).rejects.toMatchObject({
    kind: 'too_large',
    message: expect.stringMatching(/65537 items .* several shorter streams/),
  });
  expect(await store.listBatchBlocks('j')).toEqual([]);
});

it('refuses a transaction whose several writes together append more feed rows than one may: too_large, nothing stored', async () => {
  await using opened = await storeBesideSession('feed_rows_calls');
  const { url, store, session } = opened;
  await store.createOrGetJob(sampleJob('j'));
  const orm = await openPostgresqlOrm({ url });
  try {
    const ctx = new StoreContext(orm, 'postgresql');
    const refs = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);
    const before = await store.headSeq();
    // Each call is within the limit (checkFeedRows lets it pass); the database counts the transaction's.
    const failure = await ctx
      .tableTransaction('j', async (trx) => {
        await ctx.hot.appendChanges(trx, 'j', 'epoch', refs(0, 40_000));
        await ctx.hot.appendChanges(trx, 'j', 'epoch', refs(40_000, 40_000));
      })
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect(failure).toMatchObject({
      kind: 'too_large',
      message: expect.stringMatching(/several shorter streams/),
    });
    expect(postgresCode(failure)).toBe('54000'); // the database's refusal, kept as the cause
    expect(
      (await session.query(`SELECT count(*)::int AS n FROM store_change WHERE kind = 'epoch'`)).rows[0].n,
    ).toBe(0);
    expect(await store.headSeq()).toBeGreaterThanOrEqual(before);
  } finally {
    await orm.close(true);
  }
});

it('keeps epoch reports on their one call after this store created the job or renewed its lease, not after a write of another', async () => {
  await using opened = await storeBesideSession('lease_version');
  const { store, session: other } = opened;
  await store.createOrGetJob(sampleJob('j'));
  const report = (epoch: number) =>
    store.saveEpoch({
      jobId: 'j',
      epoch,
      metrics: { accuracy: 0.5 + epoch / 10 },
      columns: {},
      timestamp: new Date(),
      best: { epoch, value: 0.5 + epoch / 10 },
    });
  // The locked path reads the job row under its lock; the one call decides from the remembered version.
  const locked = vi.spyOn(HotPath.prototype, 'lockJobForEpoch');
  try {
    await report(0);
    await store.renewLease('j', { nowMs: Date.now(), leaseMs: 30_000 });
    await report(1);
    expect(locked).not.toHaveBeenCalled();
    // A write this store did not make (another sidecar's) sends the next report down the locked path.
    await other.query(`UPDATE training_job SET updated_at = now() WHERE job_id = 'j'`);
    await report(2);
    expect(locked).toHaveBeenCalledTimes(1);
    expect((await store.getJob('j'))?.epochsReported).toBe(3);
  } finally {
    locked.mockRestore();
  }
});

it("sends the epoch report's call as a named prepared statement outside a transaction, and unnamed for good once a pooler loses it", async () => {
  await using opened = await storeBesideSession('named');
  const { store, session } = opened;
  await store.createOrGetJob(sampleJob('j'));
  const { user, host, port, database } = session;
  const notices: string[] = [];
  const pools: pg.Pool[] = [];
  const clients: pg.PoolClient[] = [];
  // A connection of its own pool, used as Kysely uses one (`query(text, values)`), so that
  // pg_prepared_statements (a view of the session's own) sees its statements.
  const connection = async () => {
    const pool = createPool({
      url: `postgres://${user}@${host}:${port}/${database}`,
      poolSize: 1,
      onNotice: (message) => notices.push(message),
    });
    pools.push(pool);
    const client = await pool.connect();
    clients.push(client);
    return client;
  };
  const prepared = async (db: pg.PoolClient) =>
    (await db.query('select name from pg_prepared_statements')).rows.map((r) => r.name as string);
  // A report decided from a stale version (xid 1): the call writes nothing and answers NULL.
  const now = new Date().toISOString();
  const report = [
    ...['j', 0, '1', null, null, now, null, 0.5, null, '{}', '[]', now, '[]'],
    Date.now(),
    null,
  ];
  const name = statementName(PG_SQL.saveEpoch);
  try {
    const db = await connection();
    expect((await db.query(PG_SQL.saveEpoch, report)).rows).toEqual([{ saved: null }]);
    expect(await prepared(db)).toEqual([name]);
    // A pooler in transaction mode hands the connection's next statement to a server connection that
    // never saw the name: the server forgets it behind the client's back (26000 on the next Bind).
    await db.query('DEALLOCATE ALL');
    expect((await db.query(PG_SQL.saveEpoch, report)).rows).toEqual([{ saved: null }]);
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/prepared statement .* does not exist.*unnamed from now on/);
    await db.query(PG_SQL.saveEpoch, report);
    expect(await prepared(db)).toEqual([]);
    expect(notices).toHaveLength(1);

    // Or to one where another client prepared that name already (42P05 on the Parse).
    const other = await connection();
    await other.query(`PREPARE ${name} AS SELECT 1`);
    expect((await other.query(PG_SQL.saveEpoch, report)).rows).toEqual([{ saved: null }]);
    expect(notices[1]).toMatch(/prepared statement .* already exists/);

    // Inside a transaction the call goes unnamed: a lost name there would have aborted it.
    const inTransaction = await connection();
    await inTransaction.query('BEGIN');
    await inTransaction.query(PG_SQL.saveEpoch, report);
    expect(await prepared(inTransaction)).toEqual([]);
    await inTransaction.query('COMMIT');
    expect(notices).toHaveLength(2);
    // The stale reports wrote nothing.
    expect(await store.listEpochs('j')).toEqual([]);
  } finally {
    for (const client of clients) client.release();
    await Promise.all(pools.map((pool) => pool.end()));
  }
});

/** A fresh server with one database the store's migrations were applied to (by a store opened and closed). */
async function serverWithMigrated(database: string) {
  const server = await startPostgres();
  const url = await server.createDatabase(database);
  await (await openStore({ dbPath: url })).close();
  return { server, url };
}

it('serves sidecars through PgBouncer in transaction mode (1.18: no prepared statements there): they start together, report, and stop naming', async () => {
  // The README's way: the first start migrates on a direct URL; the pooled starts then take no session lock.
  const { server } = await serverWithMigrated('pooled');
  await using _server = server;
  await using bouncer = await startPgbouncer(server, { poolMode: 'transaction', poolSize: 2 });
  expect(bouncer.version).toMatch(/^PgBouncer 1\.(1\d|20)\./);
  const notices: string[] = [];
  const stores = await Promise.all(
    [0, 1, 2].map(() =>
      openStore({ dbPath: bouncer.databaseUrl('pooled'), poolSize: 3, onNotice: (m) => notices.push(m) }),
    ),
  );
  try {
    await stores[0]!.createOrGetJob(sampleJob('j'));
    // Three sidecars on two server connections: every report meets connections others prepared on.
    await Promise.all(
      stores.map(async (store, s) => {
        for (let e = s; e < 45; e += 3) {
          await store.saveEpoch({
            jobId: 'j',
            epoch: e,
            metrics: { accuracy: 0.5 + e / 100 },
            columns: {},
            timestamp: new Date(),
            best: { epoch: e, value: 0.5 + e / 100 },
          });
        }
      }),
    );
    expect((await stores[1]!.listEpochs('j', { limit: 100 })).map((e) => e.epoch)).toEqual(
      Array.from({ length: 45 }, (_, e) => e),
    );
    expect((await stores[2]!.getJob('j'))?.epochsReported).toBe(45);
    // Each store that met a lost statement said so once.
    expect(notices.length).toBeGreaterThanOrEqual(1);
    expect(notices.length).toBeLessThanOrEqual(3);
    for (const notice of notices)
      expect(notice).toMatch(/prepared statement .*(does not exist|already exists)/);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
  }
});

it('starts on a migrated database without the migration lock, so a lock a pooler left held stops no start', async () => {
  const { server, url } = await serverWithMigrated('migrated');
  await using _server = server;
  // A pooler in transaction mode can leave a session's advisory lock on a server connection it hands on.
  const holder = new pg.Client({ connectionString: url });
  await holder.connect();
  try {
    await holder.query('select pg_advisory_lock($1)', [0x5443434d]);
    const store = await Promise.race([
      openStore({ dbPath: url }),
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(new Error('the start waited for the lock')), 10_000),
      ),
    ]);
    await store.close();
  } finally {
    await holder.end();
  }
});
