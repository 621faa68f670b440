// The hot-path statements of hot-path.ts on both dialects: the SQL each builder sends is pinned (so a
// change of the statements, or of how Kysely compiles them, shows here), and what they write is read
// back through the entities — MikroORM's own conversion — to show the table view stores exactly what
// the entities would. On a real PostgreSQL, what the epoch report's one statement promises: a report
// of a job the store reported before runs without a transaction, and what it was decided from is only a
// guess the database checks (another store's report, an end or a resume in between, and the report is
// decided again under the row's lock).
import type { MikroORM } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { stepBounds } from './batch-points.ts';
import { BatchMetricBlock, OutboxItem, StoreChange, TrainingJob, TrainingMetric } from './entities.ts';
import { type BlockInsert, HotPath, PG_SQL, SQLITE_SQL, type TableKysely } from './hot-path.ts';
import { type BestEpochRule, openStore, type Store, StoreError } from './index.ts';
import { packFloat64, packInt64, unpackFloat64, unpackInt64 } from './number-codec.ts';
import { openPostgresqlOrm } from './postgresql-dialect.ts';
import { highest } from './spec/best-rules.ts';
import { DIALECTS, testDatabases } from './spec/databases.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';
import { sampleJob } from './testing.ts';
import type { StoreDialect } from './types.ts';

const databases = testDatabases();

interface Fixture {
  store: Store;
  orm: MikroORM;
  hot: HotPath;
  /** Runs `run` in one transaction on the table view; returns its result and the SQL it sent. */
  inTransaction<T>(run: (trx: Parameters<HotPath['insertBlocks']>[0]) => Promise<T>): Promise<[T, string[]]>;
  /** A fresh EntityManager: reads through the entities. */
  em(): EntityManager;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A store with job `j` on a fresh database of `dialect`, and the hot path on the same database. */
async function fixture(dialect: StoreDialect): Promise<Fixture> {
  const dbPath = await databases.fresh(dialect);
  const store = await openStore({ dbPath });
  closers.push(() => store.close());
  await store.createOrGetJob(sampleJob('j'));
  const orm =
    dialect === 'postgresql' ? await openPostgresqlOrm({ url: dbPath }) : await openSqliteOrm({ dbPath });
  closers.push(() => orm.close(true));
  const hot = new HotPath(dialect, orm);
  const tables = (orm.em.fork() as EntityManager).getKysely() as unknown as TableKysely;
  return {
    store,
    orm,
    hot,
    async inTransaction(run) {
      // Recorded where every statement passes, built or written out: the transaction's executor.
      const sent: string[] = [];
      const result = await tables.transaction().execute((trx) => {
        const executor = trx.getExecutor();
        const execute = executor.executeQuery.bind(executor);
        executor.executeQuery = (query, options) => {
          sent.push(query.sql);
          return execute(query, options);
        };
        return run(trx);
      });
      return [result, sent];
    },
    em: () => orm.em.fork() as EntityManager,
  };
}

/** A block's row to write, from its steps and row-major values. */
/** Job `j`'s blocks as the entities read them back, in id order, their blobs unpacked. */
async function storedBlocks(f: Fixture) {
  const blocks = await f.em().find(BatchMetricBlock, { job: 'j' }, { orderBy: { id: 'asc' } });
  return blocks.map((b) => ({
    id: b.id,
    epoch: b.epoch,
    firstStep: b.firstStep,
    lastStep: b.lastStep,
    names: b.names,
    steps: [...unpackInt64(b.steps)],
    values: [...unpackFloat64(b.values)],
    receivedAtMs: b.receivedAtMs,
  }));
}

function block(epoch: number, names: string[], steps: bigint[], values: number[]): BlockInsert {
  const { min, max } = stepBounds(BigInt64Array.from(steps));
  return {
    epoch,
    firstStep: min,
    lastStep: max,
    names,
    steps: packInt64(BigInt64Array.from(steps)),
    values: packFloat64(Float64Array.from(values)),
  };
}

/** The SQL of the batch append's statements, per dialect. */
const BATCH_SQL = {
  sqlite: {
    lockJobForBatch:
      'select "j"."status", "b"."id", "b"."epoch", "b"."names", "b"."steps", "b"."values", "b"."received_at_ms" ' +
      'from "training_job" as "j" left join "batch_metric_block" as "b" on "b"."job_id" = "j"."job_id" ' +
      'and "b"."last_step" >= ? and "b"."first_step" <= ? where "j"."job_id" = ?',
    insertBlocks:
      'insert into "batch_metric_block" ("job_id", "epoch", "first_step", "last_step", "names", "steps", ' +
      '"values", "received_at_ms") values (?, ?, ?, ?, ?, ?, ?, ?), (?, ?, ?, ?, ?, ?, ?, ?) returning "id"',
    insertBlockOutbox:
      'insert into "outbox_item" ("job_id", "kind", "payload", "block_id", "created_at_ms", "attempts", ' +
      '"next_attempt_at_ms", "last_error", "parked_error") values (?, ?, ?, ?, ?, ?, ?, ?, ?), ' +
      '(?, ?, ?, ?, ?, ?, ?, ?, ?)',
    pendingBlockEntryKind: 'select "kind" from "outbox_item" where "block_id" = ?',
    updateBlock:
      'update "batch_metric_block" set "epoch" = ?, "first_step" = ?, "last_step" = ?, "names" = ?, ' +
      '"steps" = ?, "values" = ? where "id" = ?',
    deleteBlock: [
      'delete from "outbox_item" where "block_id" = ?',
      'delete from "batch_metric_block" where "id" = ?',
    ],
  },
  postgresql: {
    lockJobForBatch:
      'select "j"."status", "b"."id", "b"."epoch", "b"."names", "b"."steps", "b"."values", "b"."received_at_ms" ' +
      'from "training_job" as "j" left join "batch_metric_block" as "b" on "b"."job_id" = "j"."job_id" ' +
      'and "b"."last_step" >= $1 and "b"."first_step" <= $2 where "j"."job_id" = $3 for share of "j"',
    insertBlocks:
      'insert into "batch_metric_block" ("job_id", "epoch", "first_step", "last_step", "names", "steps", ' +
      '"values", "received_at_ms") values ($1, $2, $3, $4, $5, $6, $7, $8), ($9, $10, $11, $12, $13, $14, ' +
      '$15, $16) returning "id"',
    insertBlockOutbox:
      'insert into "outbox_item" ("job_id", "kind", "payload", "block_id", "created_at_ms", "attempts", ' +
      '"next_attempt_at_ms", "last_error", "parked_error") values ($1, $2, $3, $4, $5, $6, $7, $8, $9), ' +
      '($10, $11, $12, $13, $14, $15, $16, $17, $18)',
    pendingBlockEntryKind: 'select "kind" from "outbox_item" where "block_id" = $1',
    updateBlock:
      'update "batch_metric_block" set "epoch" = $1, "first_step" = $2, "last_step" = $3, "names" = $4, ' +
      '"steps" = $5, "values" = $6 where "id" = $7',
    deleteBlock: [
      'delete from "outbox_item" where "block_id" = $1',
      'delete from "batch_metric_block" where "id" = $1',
    ],
  },
} as const;

describe.each(DIALECTS)('%s: the batch append’s statements', (dialect) => {
  const pinned = BATCH_SQL[dialect];

  it('insert blocks with RETURNING id and their outbox references; the entities read them back', async () => {
    const f = await fixture(dialect);
    const big = 2n ** 40n;
    const [ids, sqls] = await f.inTransaction(async (trx) => {
      const ids = await f.hot.insertBlocks(
        trx,
        'j',
        [
          block(0, ['loss', 'lr'], [1n, 2n], [0.5, 1e-3, Number.NaN, -0]),
          block(1, ['loss'], [big, 3n], [Number.NEGATIVE_INFINITY, 0.25]),
        ],
        1_700_000_000_123,
      );
      await f.hot.insertBlockOutbox(trx, 'j', 'batch', ids, 1_700_000_000_456);
      return ids;
    });
    expect(sqls).toEqual([pinned.insertBlocks, pinned.insertBlockOutbox]);
    expect(ids).toHaveLength(2);
    expect(ids.every((id) => typeof id === 'number')).toBe(true);

    const blocks = await storedBlocks(f);
    expect(blocks.map((b) => b.id)).toEqual(ids);
    expect(blocks.map(({ id: _, ...rest }) => rest)).toEqual([
      {
        epoch: 0,
        firstStep: 1n,
        lastStep: 2n,
        names: ['loss', 'lr'],
        steps: [1n, 2n],
        values: [0.5, 1e-3, Number.NaN, -0],
        receivedAtMs: 1_700_000_000_123,
      },
      {
        epoch: 1,
        firstStep: 3n,
        lastStep: big,
        names: ['loss'],
        steps: [big, 3n],
        values: [Number.NEGATIVE_INFINITY, 0.25],
        receivedAtMs: 1_700_000_000_123,
      },
    ]);
    expect(Object.is(blocks[0]!.values[3], -0)).toBe(true);

    const entries = await f.em().find(OutboxItem, { job: 'j' }, { orderBy: { id: 'asc' } });
    expect(
      entries.map((e) => ({
        kind: e.kind,
        payload: e.payload,
        blockId: e.blockId,
        createdAtMs: e.createdAtMs,
        attempts: e.attempts,
        nextAttemptAtMs: e.nextAttemptAtMs,
        lastError: e.lastError,
        parkedError: e.parkedError,
      })),
    ).toEqual(
      ids.map((blockId) => ({
        kind: 'batch',
        payload: null,
        blockId,
        createdAtMs: 1_700_000_000_456,
        attempts: 0,
        nextAttemptAtMs: 1_700_000_000_456,
        lastError: null,
        parkedError: null,
      })),
    );
    // The store's own reads see them as its writes do.
    const [peeked] = await f.store.peekOutbox('j', 1);
    expect(peeked?.block?.names).toEqual(['loss', 'lr']);
    expect(peeked?.block?.receivedAtMs).toBe(1_700_000_000_123);
  });

  it('locks the running job and reads the blocks that meet a step range in one statement', async () => {
    const f = await fixture(dialect);
    const [ids] = await f.inTransaction((trx) =>
      f.hot.insertBlocks(
        trx,
        'j',
        [block(0, ['a'], [1n, 2n, 3n], [1, 2, 3]), block(0, ['a'], [10n, 12n], [10, 12])],
        42,
      ),
    );
    const [hit, sqls] = await f.inTransaction((trx) =>
      f.hot.lockJobForBatch(trx, 'j', { firstStep: 3n, lastStep: 10n }),
    );
    expect(sqls).toEqual([pinned.lockJobForBatch]);
    expect(hit?.status).toBe('running');
    expect(
      hit?.overlapping
        .map((b) => ({ ...b, steps: [...unpackInt64(b.steps)], values: [...unpackFloat64(b.values)] }))
        .sort((x, y) => x.id - y.id),
    ).toEqual([
      { id: ids[0], epoch: 0, names: ['a'], steps: [1n, 2n, 3n], values: [1, 2, 3], receivedAtMs: 42 },
      { id: ids[1], epoch: 0, names: ['a'], steps: [10n, 12n], values: [10, 12], receivedAtMs: 42 },
    ]);
    const [gap] = await f.inTransaction((trx) =>
      f.hot.lockJobForBatch(trx, 'j', { firstStep: 4n, lastStep: 9n }),
    );
    expect(gap).toEqual({ status: 'running', overlapping: [] });
    const [none] = await f.inTransaction((trx) =>
      f.hot.lockJobForBatch(trx, 'nobody', { firstStep: 0n, lastStep: 1n }),
    );
    expect(none).toBeUndefined();
    await f.store.endJob({
      jobId: 'j',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    const [ended] = await f.inTransaction((trx) =>
      f.hot.lockJobForBatch(trx, 'j', { firstStep: 4n, lastStep: 9n }),
    );
    expect(ended?.status).toBe('completed');
  });

  it('rewrites a block, tells its pending entry’s kind, deletes a block with its entries', async () => {
    const f = await fixture(dialect);
    const [ids] = await f.inTransaction(async (trx) => {
      const ids = await f.hot.insertBlocks(
        trx,
        'j',
        [block(0, ['a', 'b'], [1n, 2n], [1, 2, 3, 4]), block(0, ['a'], [5n], [5])],
        7,
      );
      await f.hot.insertBlockOutbox(trx, 'j', 'batch', [ids[1]!], 8);
      return ids;
    });
    const [kinds, sqls] = await f.inTransaction(async (trx) => [
      await f.hot.pendingBlockEntryKind(trx, ids[0]!),
      await f.hot.pendingBlockEntryKind(trx, ids[1]!),
    ]);
    expect(sqls).toEqual([pinned.pendingBlockEntryKind, pinned.pendingBlockEntryKind]);
    expect(kinds).toEqual([undefined, 'batch']);

    const [, updateSql] = await f.inTransaction((trx) =>
      f.hot.updateBlock(trx, ids[0]!, block(3, ['b'], [2n], [Number.POSITIVE_INFINITY])),
    );
    expect(updateSql).toEqual([pinned.updateBlock]);
    const [, deleteSql] = await f.inTransaction((trx) => f.hot.deleteBlock(trx, ids[1]!));
    expect(deleteSql).toEqual(pinned.deleteBlock);

    expect(await storedBlocks(f)).toEqual([
      {
        id: ids[0],
        epoch: 3,
        firstStep: 2n,
        lastStep: 2n,
        names: ['b'],
        steps: [2n],
        values: [Number.POSITIVE_INFINITY],
        receivedAtMs: 7, // the receipt time stays
      },
    ]);
    expect(await f.em().count(OutboxItem, { job: 'j' })).toBe(0);
  });
});

describe('sqlite: the written-out statements of the epoch report and the batch append', () => {
  it('sends the pinned texts with bound parameters; the entities read back what they wrote', async () => {
    const f = await fixture('sqlite');
    const at = new Date('2026-01-02T03:04:05.678Z');
    const [locked, sqls] = await f.inTransaction(async (trx) => {
      const before = await f.hot.lockJobForEpoch(trx, 'j', 4);
      await f.hot.upsertEpoch(trx, {
        jobId: 'j',
        epoch: 4,
        loss: 0.5,
        accuracy: null,
        learningRate: 1e-3,
        extraMetrics: { f1: 0.75 },
        nonFinite: ['loss_nan'],
        timestamp: at,
      });
      await f.hot.updateJobAfterEpoch(trx, 'j', {
        increment: 1,
        best: { epoch: 4, value: 0.5 },
        updatedAt: at,
      });
      await f.hot.insertOutbox(trx, 'j', [{ kind: 'epoch', payload: { epoch: 4 } }], 1_700_000_000_001);
      await f.hot.appendChanges(trx, 'j', 'epoch', [4]);
      const ids = await f.hot.insertBlocks(trx, 'j', [block(4, ['a'], [1n, 2n], [1, 2])], 9);
      await f.hot.insertBlockOutbox(trx, 'j', 'batch', ids, 10);
      await f.hot.lockJobForBatch(trx, 'j', { firstStep: 1n, lastStep: 2n });
      return before;
    });
    expect(sqls).toEqual([
      SQLITE_SQL.lockJobForEpoch,
      SQLITE_SQL.upsertEpoch,
      SQLITE_SQL.updateJobAfterEpoch,
      SQLITE_SQL.insertOutbox,
      SQLITE_SQL.appendChange,
      SQLITE_SQL.insertBlocks(1),
      SQLITE_SQL.insertOutbox,
      SQLITE_SQL.lockJobForBatch,
    ]);
    // The texts, spelled out once more: a change to one shows here.
    expect(SQLITE_SQL).toMatchInlineSnapshot(`
      {
        "appendChange": "insert into "store_change" ("job_id", "kind", "ref") values (?, ?, ?)",
        "insertBlocks": [Function],
        "insertOutbox": "insert into "outbox_item" ("job_id", "kind", "payload", "block_id", "created_at_ms", "attempts", "next_attempt_at_ms", "last_error", "parked_error") values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "lockJobForBatch": "select "j"."status", "b"."id", "b"."epoch", "b"."names", "b"."steps", "b"."values", "b"."received_at_ms" from "training_job" as "j" left join "batch_metric_block" as "b" on "b"."job_id" = "j"."job_id" and "b"."last_step" >= ? and "b"."first_step" <= ? where "j"."job_id" = ?",
        "lockJobForEpoch": "select "j"."status", "j"."epochs_reported", "j"."primary_metric", "j"."best_epoch", "j"."best_value", "m"."id" as "epoch_row", "m"."timestamp", "m"."extra_metrics" from "training_job" as "j" left join "training_metric" as "m" on "m"."job_id" = "j"."job_id" and "m"."epoch" = ? where "j"."job_id" = ?",
        "updateJobAfterEpoch": "update "training_job" set "epochs_reported" = "epochs_reported" + ?, "best_epoch" = ?, "best_value" = ?, "updated_at" = ? where "job_id" = ?",
        "upsertEpoch": "insert into "training_metric" ("job_id", "epoch", "loss", "accuracy", "learning_rate", "extra_metrics", "non_finite", "timestamp") values (?, ?, ?, ?, ?, ?, ?, ?) on conflict ("job_id", "epoch") do update set "loss" = "excluded"."loss", "accuracy" = "excluded"."accuracy", "learning_rate" = "excluded"."learning_rate", "extra_metrics" = "excluded"."extra_metrics", "non_finite" = "excluded"."non_finite", "timestamp" = "excluded"."timestamp"",
      }
    `);
    expect(SQLITE_SQL.insertBlocks(2)).toBe(BATCH_SQL.sqlite.insertBlocks);
    expect(locked?.job).toMatchObject({ status: 'running', epochsReported: 0, bestEpoch: null });
    expect(locked?.previous).toBeUndefined();

    const [again] = await f.inTransaction((trx) => f.hot.lockJobForEpoch(trx, 'j', 4));
    expect(again).toEqual({
      job: expect.objectContaining({ epochsReported: 1, bestEpoch: 4, bestValue: 0.5 }),
      previous: { reported: true, extraMetrics: { f1: 0.75 } },
    });
    const metric = await f.em().findOneOrFail(TrainingMetric, { job: 'j', epoch: 4 });
    expect({
      loss: metric.loss,
      accuracy: metric.accuracy,
      learningRate: metric.learningRate,
      extraMetrics: metric.extraMetrics,
      nonFinite: metric.nonFinite,
      timestamp: metric.timestamp,
    }).toEqual({
      loss: 0.5,
      accuracy: null,
      learningRate: 1e-3,
      extraMetrics: { f1: 0.75 },
      nonFinite: ['loss_nan'],
      timestamp: at,
    });
    const job = await f.em().findOneOrFail(TrainingJob, { jobId: 'j' });
    expect([job.epochsReported, job.bestEpoch, job.bestValue, job.updatedAt]).toEqual([1, 4, 0.5, at]);
    const entries = await f.em().find(OutboxItem, { job: 'j' }, { orderBy: { id: 'asc' } });
    expect(entries.map((e) => [e.kind, e.payload, e.blockId === null, e.createdAtMs, e.attempts])).toEqual([
      ['epoch', { epoch: 4 }, true, 1_700_000_000_001, 0],
      ['batch', null, false, 10, 0],
    ]);
    const changes = await f.em().find(StoreChange, { job: 'j', kind: 'epoch' });
    expect(changes.map((c) => c.ref)).toEqual([4]);
  });
});

describe.each(DIALECTS)('%s: appendBatchBlocks on the table view', (dialect) => {
  it('cuts, deletes and re-queues overlapped blocks in one transaction; the feed names each block', async () => {
    const f = await fixture(dialect);
    const steps = (...s: bigint[]) => BigInt64Array.from(s);
    const values = (...v: number[]) => Float64Array.from(v);
    const seq0 = await f.store.headSeq();
    let fired = 0;
    const off = f.store.onCommit(() => fired++);
    await f.store.appendBatchBlocks(
      'j',
      [
        { epoch: 0, names: ['a', 'b'], steps: steps(1n, 2n, 3n), values: values(1, 10, 2, 20, 3, 30) },
        { epoch: 0, names: ['c'], steps: steps(2n), values: values(200) },
      ],
      { outboxKind: 'batch', receivedAtMs: 100 },
    );
    expect(fired).toBe(1);
    // a@2 replaced: the first block is cut into dense pieces — step 1 (a, b) rewrites it, step 2 (b)
    // and step 3 (a, b) are new rows with an outbox entry each, as the block's own entry is pending;
    // c@2 replaced: that block keeps nothing and goes, with its entry.
    const result = await f.store.appendBatchBlocks(
      'j',
      [{ epoch: 0, names: ['a', 'c'], steps: steps(2n), values: values(2.5, 201) }],
      { outboxKind: 'batch', receivedAtMs: 200 },
    );
    off();
    expect(fired).toBe(2);
    expect(result).toEqual({ unchangedPoints: 0, replacedPoints: 2 });
    const listed = await f.store.listBatchBlocks('j');
    expect(listed.map((b) => ({ names: b.names, steps: [...b.steps], values: [...b.values] }))).toEqual([
      { names: ['a', 'b'], steps: [1n], values: [1, 10] },
      { names: ['b'], steps: [2n], values: [20] },
      { names: ['a', 'c'], steps: [2n], values: [2.5, 201] },
      { names: ['a', 'b'], steps: [3n], values: [3, 30] },
    ]);
    const blocks = await f
      .em()
      .find(BatchMetricBlock, { job: 'j' }, { orderBy: [{ firstStep: 'asc' }, { id: 'asc' }] });
    expect(blocks.map((b) => b.receivedAtMs)).toEqual([100, 100, 200, 100]);
    const entries = await f.em().find(OutboxItem, { job: 'j' }, { orderBy: { id: 'asc' } });
    const ids = blocks.map((b) => b.id).sort((x, y) => x - y);
    expect(entries.map((e) => e.blockId)).toEqual(ids);
    expect(entries.map((e) => e.kind)).toEqual(['batch', 'batch', 'batch', 'batch']);
    const changes = await f
      .em()
      .find(StoreChange, { job: 'j', seq: { $gt: seq0 } }, { orderBy: { seq: 'asc' } });
    // First write: its two blocks; second: the rewritten block, its two new pieces, the new block.
    expect(changes.map((c) => c.kind)).toEqual(Array(6).fill('batch'));
    expect(changes.slice(2).map((c) => c.ref)).toEqual(ids);

    // The very same points again change nothing: no rows, no feed row, no commit signal.
    const feedRows = await f.em().count(StoreChange, { job: 'j' });
    const again = await f.store.appendBatchBlocks(
      'j',
      [{ epoch: 0, names: ['a', 'c'], steps: steps(2n), values: values(2.5, 201) }],
      { outboxKind: 'batch' },
    );
    expect(again).toEqual({ unchangedPoints: 2, replacedPoints: 0 });
    expect(await f.em().count(StoreChange, { job: 'j' })).toBe(feedRows);
    expect(await f.em().count(OutboxItem, { job: 'j' })).toBe(4);
  });
});

function report(
  store: Store,
  epoch: number,
  accuracy: number,
  best: BestEpochRule = highest(epoch, accuracy),
) {
  return store.saveEpoch({
    jobId: 'j',
    epoch,
    metrics: { accuracy },
    columns: { accuracy },
    timestamp: new Date('2026-01-01T00:00:00Z'),
    best,
    outbox: [{ kind: 'epoch_metrics', payload: { epoch } }],
  });
}

describe('PostgreSQL statements', () => {
  let hot: HotPath;
  let close: () => Promise<void>;
  beforeAll(async () => {
    const orm = await openPostgresqlOrm({ url: await databases.fresh('postgresql') });
    hot = new HotPath('postgresql', orm);
    close = () => orm.close(true);
  });
  afterAll(() => close());

  it('writes an epoch report in one call of tc_save_epoch, with the job row version it was decided from', () => {
    const query = hot.epochReportQuery({
      row: {
        jobId: 'j',
        epoch: 3,
        loss: null,
        accuracy: 0.9,
        learningRate: null,
        extraMetrics: { accuracy: 0.9, loss: 'NaN' },
        nonFinite: ['loss'],
        timestamp: new Date('2026-01-01T00:00:00Z'),
      },
      version: '1234',
      best: { epoch: 3, value: 0.9 },
      updatedAt: new Date('2026-01-01T00:00:01Z'),
      outbox: [{ kind: 'epoch_metrics', payload: { epoch: 3 } }],
      nowMs: 1000,
    });
    expect(query.sql).toBe(PG_SQL.saveEpoch);
    expect(query.sql).toMatchInlineSnapshot(
      `"select tc_save_epoch($1::varchar, $2::int, $3::xid, $4::int, $5::float8, $6::timestamptz, $7::float8, $8::float8, $9::float8, $10::jsonb, $11::jsonb, $12::timestamptz, $13::jsonb, $14::bigint, $15::bigint) as saved"`,
    );
    expect(query.parameters).toMatchInlineSnapshot(`
      [
        "j",
        3,
        "1234",
        3,
        0.9,
        "2026-01-01T00:00:01.000Z",
        null,
        0.9,
        null,
        "{"accuracy":0.9,"loss":"NaN"}",
        "["loss"]",
        "2026-01-01T00:00:00.000Z",
        "[{"kind":"epoch_metrics","payload":{"epoch":3}}]",
        1000,
        null,
      ]
    `);
  });

  it('writes an epoch begin in one call of tc_begin_epoch', () => {
    expect(PG_SQL.beginEpoch).toMatchInlineSnapshot(
      `"select tc_begin_epoch($1::varchar, $2::int, $3::timestamptz) as status"`,
    );
  });
});

describe('PostgreSQL epoch reports', () => {
  let url: string;
  let probe: pg.Client;
  const open: Store[] = [];
  beforeAll(async () => {
    url = await databases.fresh('postgresql');
    probe = new pg.Client({ connectionString: url });
    await probe.connect();
  });
  afterAll(async () => {
    for (const store of open) await store.close();
    await probe.end();
  });

  /** Connections of the database, other than the probe's, inside a transaction. */
  async function inTransaction(): Promise<number> {
    const { rows } = await probe.query(
      `select count(*)::int as n from pg_stat_activity
       where datname = current_database() and backend_type = 'client backend' and pid <> pg_backend_pid()
         and xact_start is not null`,
    );
    return rows[0].n;
  }

  it("decides a report of a job it created or reported before without a transaction; of another store's job under the row lock", async () => {
    const store = await openStore({ dbPath: url });
    open.push(store);
    await store.createOrGetJob(sampleJob('j'));
    const seen: number[] = [];
    const watching =
      (epoch: number, value: number): BestEpochRule =>
      async (incumbent, others) => {
        seen.push(await inTransaction());
        return highest(epoch, value)(incumbent, others);
      };
    await report(store, 0, 0.5, watching(0, 0.5));
    await report(store, 1, 0.6, watching(1, 0.6));
    await report(store, 1, 0.4, watching(1, 0.4)); // the best re-reported lower: other epochs read
    const other = await openStore({ dbPath: url });
    open.push(other);
    await report(other, 2, 0.45, watching(2, 0.45)); // a job this store never wrote: read under its lock
    expect(seen).toEqual([0, 0, 0, 1]);
    expect(await store.getJob('j')).toMatchObject({ epochsReported: 3, bestEpoch: 0, bestValue: 0.5 });
  });
});

describe.each(DIALECTS)('%s', (dialect) => {
  it('decides again from the database when another store wrote the job since, and refuses reports after the end', async () => {
    const dbPath = await databases.fresh(dialect);
    const a = await openStore({ dbPath });
    const b = await openStore({ dbPath });
    try {
      await a.createOrGetJob(sampleJob('j'));
      expect(await report(a, 0, 0.5)).toEqual({
        best: { epoch: 0, value: 0.5 },
        epochsReported: 1,
        isNew: true,
      });
      expect(await report(b, 1, 0.9)).toEqual({
        best: { epoch: 1, value: 0.9 },
        epochsReported: 2,
        isNew: true,
      });
      // a last saw epoch 0 as the best: its guess is stale, the database's best (1) stays.
      expect(await report(a, 2, 0.7)).toEqual({
        best: { epoch: 1, value: 0.9 },
        epochsReported: 3,
        isNew: true,
      });
      // Resent with the very same metrics: not new, nothing more to mirror.
      expect(await report(a, 2, 0.7)).toEqual({
        best: { epoch: 1, value: 0.9 },
        epochsReported: 3,
        isNew: false,
      });
      expect((await a.peekOutbox('j', 100)).length).toBe(3);
      // Resent with other metrics: mirrored again.
      expect(await report(a, 2, 0.6)).toEqual({
        best: { epoch: 1, value: 0.9 },
        epochsReported: 3,
        isNew: false,
      });
      expect((await a.peekOutbox('j', 100)).length).toBe(4);
      await b.endJob({
        jobId: 'j',
        status: 'failed',
        finalMetrics: {},
        errorMessage: '',
        endedAt: new Date(),
      });
      await expect(report(a, 3, 0.8)).rejects.toSatisfy((e) => e instanceof StoreError && e.kind === 'ended');
      await expect(a.beginEpoch('j', 3, new Date())).rejects.toSatisfy(
        (e) => e instanceof StoreError && e.kind === 'ended',
      );
      await b.reopenJob('j', { startEpoch: 3 });
      await a.beginEpoch('j', 3, new Date('2026-01-01T00:00:00.5Z'));
      expect(await report(a, 3, 0.8)).toEqual({
        best: { epoch: 1, value: 0.9 },
        epochsReported: 4,
        isNew: true,
      });
      expect(
        (await a.listEpochs('j')).map((e) => [e.epoch, e.metrics.accuracy, e.beganAt?.toISOString()]),
      ).toEqual([
        [0, 0.5, undefined],
        [1, 0.9, undefined],
        [2, 0.6, undefined],
        [3, 0.8, '2026-01-01T00:00:00.500Z'],
      ]);
      await expect(b.beginEpoch('nope', 0, new Date())).rejects.toSatisfy(
        (e) => e instanceof StoreError && e.kind === 'not_found',
      );
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('PostgreSQL batch appends', () => {
  it('stores a long stream (the transaction) and a short one (one call) alike', async () => {
    const f = await fixture('postgresql');
    const rows = 2_100; // × 10 names: more points than one call takes
    const names = Array.from({ length: 10 }, (_, c) => `m${c}`);
    const long = {
      epoch: 0,
      names,
      steps: BigInt64Array.from({ length: rows }, (_, r) => BigInt(r)),
      values: Float64Array.from({ length: rows * 10 }, (_, i) => i / 7),
    };
    const short = { ...long, steps: BigInt64Array.from([5_000n]), values: long.values.slice(0, 10) };
    await f.store.appendBatchBlocks('j', [long], { outboxKind: 'batch' });
    await f.store.appendBatchBlocks('j', [short], { outboxKind: 'batch' });
    const listed = await f.store.listBatchBlocks('j');
    expect(listed.map((b) => [b.steps.length, b.values.length])).toEqual([
      [rows, rows * 10],
      [1, 10],
    ]);
    expect([...listed[0]!.values]).toEqual([...long.values]);
    expect(await f.em().count(OutboxItem, { job: 'j' })).toBe(2);
    expect(await f.em().count(StoreChange, { job: 'j', kind: 'batch' })).toBe(2);
  });

  it('writes a batch append in one call of tc_append_batch: blocks, outbox references, feed rows', async () => {
    const f = await fixture('postgresql');
    const query = f.hot.batchAppendQuery({
      jobId: 'j',
      firstStep: 1n,
      lastStep: 9n,
      blocks: [block(0, ['a'], [1n, 9n], [1, 9])],
      receivedAtMs: 5,
      outboxKind: 'batch',
      nowMs: 6,
    });
    expect(query.sql).toBe(PG_SQL.appendBatch);
    expect(query.sql).toMatchInlineSnapshot(
      `"select job_status, block_ref from tc_append_batch($1::varchar, $2::bigint, $3::bigint, $4::int[], $5::bigint[], $6::bigint[], $7::jsonb[], $8::bytea[], $9::bytea[], $10::bigint, $11::varchar, $12::bigint, null::bigint)"`,
    );
    const [steps, values] = [query.parameters[7], query.parameters[8]] as [Uint8Array[], Uint8Array[]];
    expect([...query.parameters.slice(0, 7), ...query.parameters.slice(9)]).toEqual([
      'j',
      1n,
      9n,
      [0],
      [1n],
      [9n],
      ['["a"]'],
      5,
      'batch',
      6,
    ]);
    expect(steps.map((b) => [...unpackInt64(b)])).toEqual([[1n, 9n]]);
    expect(values.map((b) => [...unpackFloat64(b)])).toEqual([[1, 9]]);
  });

  it('writes only while the job runs and no stored block meets the range; the entities read it back', async () => {
    const f = await fixture('postgresql');
    const tables = (f.orm.em.fork() as EntityManager).getKysely() as unknown as TableKysely;
    const append = (firstStep: bigint, lastStep: bigint, jobId = 'j') =>
      f.hot.writeBatchAppend(tables, {
        jobId,
        firstStep,
        lastStep,
        blocks: [block(0, ['a'], [firstStep], [1]), block(0, ['a', 'b'], [lastStep], [2, Number.NaN])],
        receivedAtMs: 5,
        outboxKind: 'batch',
        nowMs: 6,
      });
    const seq0 = await f.store.headSeq();
    const written = await append(1n, 2n);
    expect(written?.status).toBe('running');
    expect(written?.ids).toHaveLength(2);
    const blocks = await f.em().find(BatchMetricBlock, { job: 'j' }, { orderBy: { id: 'asc' } });
    expect(
      blocks.map((b) => [b.id, b.firstStep, b.names, [...unpackFloat64(b.values)], b.receivedAtMs]),
    ).toEqual([
      [written!.ids[0], 1n, ['a'], [1], 5],
      [written!.ids[1], 2n, ['a', 'b'], [2, Number.NaN], 5],
    ]);
    const entries = await f.em().find(OutboxItem, { job: 'j' }, { orderBy: { id: 'asc' } });
    expect(entries.map((e) => [e.kind, e.blockId, e.createdAtMs, e.nextAttemptAtMs, e.payload])).toEqual(
      written!.ids.map((id) => ['batch', id, 6, 6, null]),
    );
    const changes = await f
      .em()
      .find(StoreChange, { job: 'j', seq: { $gt: seq0 } }, { orderBy: { seq: 'asc' } });
    expect(changes.map((c) => [c.kind, c.ref])).toEqual(written!.ids.map((id) => ['batch', id]));

    // A range that meets a stored block, an unknown job, an ended job: nothing written.
    expect(await append(2n, 3n)).toEqual({ status: 'running', ids: [] });
    expect(await append(1n, 2n, 'nobody')).toBeUndefined();
    await f.store.endJob({
      jobId: 'j',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    expect(await append(10n, 11n)).toEqual({ status: 'completed', ids: [] });
    expect(await f.em().count(BatchMetricBlock, { job: 'j' })).toBe(2);
    expect(await f.em().count(OutboxItem, { job: 'j' })).toBe(2);
  });
});
