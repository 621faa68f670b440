// Batch appends submitted together: on SQLite they share one transaction (group-commit.ts), each in
// its savepoint; on both dialects every append is stored or refused on its own, and answers only
// after its points are committed.
import type { EntityManager } from '@mikro-orm/sql';
import { sql } from 'kysely';
import { afterEach, describe, expect, it } from 'vitest';
import { GROUP_MAX_POINTS, GroupCommit } from './group-commit.ts';
import type { TableKysely, TableTransaction } from './hot-path.ts';
import { openStore, type Store, StoreError } from './index.ts';
import { nativeDatabase } from './native-sqlite.ts';
import { DIALECTS, testDatabases } from './spec/databases.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';
import { sampleJob } from './testing.ts';
import type { BatchBlock } from './types.ts';

const databases = testDatabases();
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

const block = (first: number, rows: number, value = 1): BatchBlock => ({
  epoch: 0,
  names: ['loss'],
  steps: BigInt64Array.from({ length: rows }, (_, i) => BigInt(first + i)),
  values: Float64Array.from({ length: rows }, () => value),
});

describe.each(DIALECTS)('%s: concurrent batch appends', (dialect) => {
  it('store or refuse each append alone; the stored ones are committed when they answer', async () => {
    const store: Store = await openStore({ dbPath: await databases.fresh(dialect) });
    closers.push(() => store.close());
    for (const id of ['a', 'b', 'ended']) await store.createOrGetJob(sampleJob(id));
    await store.endJob({
      jobId: 'ended',
      status: 'completed',
      finalMetrics: {},
      errorMessage: '',
      endedAt: new Date(),
    });
    // Submitted in one turn: on SQLite one transaction, where the refusals roll back alone.
    const settled = await Promise.allSettled([
      store.appendBatchBlocks('a', [block(0, 10)]),
      store.appendBatchBlocks('unknown', [block(0, 10)]),
      store.appendBatchBlocks('b', [block(0, 5)]),
      store.appendBatchBlocks('ended', [block(0, 10)]),
      // The same job again, overlapping the first: it sees the first's blocks (submission order).
      store.appendBatchBlocks('a', [block(5, 10, 2)]),
    ]);
    expect(settled.map((s) => s.status)).toEqual([
      'fulfilled',
      'rejected',
      'fulfilled',
      'rejected',
      'fulfilled',
    ]);
    const reasons = settled.flatMap((s) => (s.status === 'rejected' ? [s.reason as StoreError] : []));
    expect(reasons.map((r) => [r instanceof StoreError, r.kind])).toEqual([
      [true, 'not_found'],
      [true, 'ended'],
    ]);
    expect(settled[4]).toEqual({ status: 'fulfilled', value: { unchangedPoints: 0, replacedPoints: 5 } });
    const points = async (jobId: string) =>
      (await store.listBatchBlocks(jobId)).flatMap((b) => [...b.steps].map((s, i) => [s, b.values[i]]));
    expect(await points('a')).toEqual([
      ...Array.from({ length: 5 }, (_, i) => [BigInt(i), 1]),
      ...Array.from({ length: 10 }, (_, i) => [BigInt(5 + i), 2]),
    ]);
    expect(await points('b')).toHaveLength(5);
    expect(await points('ended')).toEqual([]);
  });
});

describe('sqlite: GroupCommit', () => {
  async function tables() {
    const dbPath = await databases.fresh('sqlite');
    const orm = await openSqliteOrm({ dbPath });
    closers.push(() => orm.close(true));
    const kysely = (orm.em.fork() as EntityManager).getKysely() as unknown as TableKysely;
    await sql`create table t (v integer not null)`.execute(kysely);
    return { kysely, dbPath };
  }
  const rows = async (kysely: TableKysely) =>
    (await sql<{ v: number }>`select v from t order by rowid`.execute(kysely)).rows.map((r) => r.v);
  const insert = (v: number) => (trx: TableTransaction) => sql`insert into t (v) values (${v})`.execute(trx);

  it('runs the writes of one turn in one transaction, a throwing one rolled back alone', async () => {
    const { kysely, dbPath } = await tables();
    const group = new GroupCommit(kysely);
    // Another connection, read synchronously the moment a write answers: it sees only what is committed.
    const reader = new (nativeDatabase())(dbPath, { readonly: true });
    closers.push(async () => {
      reader.close();
    });
    let committedWhenAnswered: unknown;
    const first = group
      .run(1, async (trx) => {
        await insert(1)(trx);
        return 'one';
      })
      .then((value) => {
        committedWhenAnswered = reader.prepare('select v from t order by rowid').all();
        return value;
      });
    const failing = group.run(1, async (trx) => {
      await insert(2)(trx);
      throw new Error('refused');
    });
    const third = group.run(1, async (trx) => {
      await insert(3)(trx);
      return 'three';
    });
    await expect(first).resolves.toBe('one');
    await expect(failing).rejects.toThrow('refused');
    await expect(third).resolves.toBe('three');
    expect(committedWhenAnswered).toEqual([{ v: 1 }, { v: 3 }]);
    expect([group.groups, group.grouped]).toEqual([1, 3]);
    expect(await rows(kysely)).toEqual([1, 3]);
  });

  it('fails every write of a group whose commit fails, and commits nothing of it', async () => {
    const { kysely } = await tables();
    const group = new GroupCommit(kysely);
    const a = group.run(1, async (trx) => insert(1)(trx));
    // Not a savepoint's error: it ends the transaction itself (SQLite's ROLLBACK), so nothing commits.
    const b = group.run(1, async (trx) => sql`rollback`.execute(trx));
    const settled = await Promise.allSettled([a, b]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect(await rows(kysely)).toEqual([]);
    // The queue goes on afterwards.
    await group.run(1, async (trx) => insert(4)(trx));
    expect(await rows(kysely)).toEqual([4]);
  });

  it('splits a long queue into groups of bounded points', async () => {
    const { kysely } = await tables();
    const group = new GroupCommit(kysely);
    const points = GROUP_MAX_POINTS / 2; // two fill a group, a third starts the next
    await Promise.all([1, 2, 3].map((v) => group.run(points, async (trx) => insert(v)(trx))));
    expect([group.groups, group.grouped]).toEqual([2, 3]);
    expect(await rows(kysely)).toEqual([1, 2, 3]);
  });
});
