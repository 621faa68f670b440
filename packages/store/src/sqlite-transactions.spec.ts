// SQLite: the hot paths' written-out statements run straight on their transaction's connection
// (sqlite-transactions.ts). Pinned here: they do, for the store's own transactions; and only they do —
// whatever is not a transaction whose callback runs now goes through Kysely, which waits for the
// connection (a read outside the transaction) or refuses (a transaction that has ended), so nothing
// ever runs inside another caller's transaction.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MikroORM } from '@mikro-orm/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TableTransaction } from './hot-path.ts';
import { openStore } from './index.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';
import { SqliteTransactions } from './sqlite-transactions.ts';
import { StoreContext } from './store-context.ts';
import { sampleJob } from './testing.ts';

let dir: string;
let orm: MikroORM;
let ctx: StoreContext;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'sqlite-transactions-'));
  const dbPath = join(dir, 'store.db');
  const store = await openStore({ dbPath });
  await store.createOrGetJob(sampleJob('a'));
  await store.close();
  orm = await openSqliteOrm({ dbPath });
  ctx = new StoreContext(orm, 'sqlite');
});

afterEach(async () => {
  vi.restoreAllMocks();
  await orm.close(true);
  rmSync(dir, { recursive: true, force: true });
});

const epoch = (n: number) => ({
  jobId: 'a',
  epoch: n,
  metrics: { accuracy: 0.5 },
  columns: { accuracy: 0.5 },
  timestamp: new Date(),
  best: { epoch: n, value: 0.5 },
});

describe('SQLite hot-path statements on their transaction’s connection', () => {
  it('an epoch report’s four statements go straight to the connection; a batch append’s too', async () => {
    const routed = vi.spyOn(SqliteTransactions.prototype, 'connectionOf');
    const direct = () => routed.mock.results.filter((r) => r.value !== undefined).length;
    const { saveEpoch } = await import('./store-epochs.ts');
    await saveEpoch(ctx, epoch(0));
    // the job's lock and read, the epoch's upsert, the job's update, the feed row
    expect(direct()).toBe(4);
    const { appendBatchBlocks } = await import('./store-batches.ts');
    await appendBatchBlocks(ctx, 'a', [
      { epoch: 0, names: ['loss'], steps: BigInt64Array.of(1n, 2n), values: Float64Array.of(0.5, 0.25) },
    ]);
    expect(direct()).toBeGreaterThan(4);
  });

  it('what the callback wrote that way is rolled back with its transaction', async () => {
    const head = await ctx.hot.headSeq(ctx.tables);
    await expect(
      ctx.tableTransaction('a', async (trx) => {
        await ctx.hot.appendChanges(trx, 'a', 'job', [null]);
        expect(await ctx.hot.headSeq(trx)).toBeGreaterThan(head); // written, inside
        throw new Error('refused after the write');
      }),
    ).rejects.toThrow('refused after the write');
    expect(await ctx.hot.headSeq(ctx.tables)).toBe(head);
  });

  it('a transaction that has ended is refused, not run inside the one open now', async () => {
    let ended: TableTransaction | undefined;
    await ctx.tableTransaction('a', async (trx) => {
      ended = trx;
    });
    const head = await ctx.hot.headSeq(ctx.tables);
    await ctx.tableTransaction('a', async () => {
      await expect(ctx.hot.appendChanges(ended!, 'a', 'job', [null])).rejects.toThrow(
        'Transaction is already committed',
      );
    });
    expect(await ctx.hot.headSeq(ctx.tables)).toBe(head);
  });

  it('a statement outside the transaction waits for its commit instead of running inside it', async () => {
    const head = await ctx.hot.headSeq(ctx.tables);
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let wrote!: () => void;
    const written = new Promise<void>((resolve) => {
      wrote = resolve;
    });
    const writing = ctx.tableTransaction('a', async (trx) => {
      await ctx.hot.appendChanges(trx, 'a', 'job', [null]);
      wrote();
      await gate;
      throw new Error('rolled back');
    });
    await written;
    // The same written-out statement on the database itself, while the transaction is open.
    let outsideDone = false;
    const database = ctx.tables as unknown as TableTransaction; // the type says transaction; it is not one
    const outside = ctx.hot.appendChanges(database, 'a', 'epoch', [7]).then(() => {
      outsideDone = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(outsideDone).toBe(false); // waiting for the connection, not writing into the open transaction
    release();
    await expect(writing).rejects.toThrow('rolled back');
    await outside;
    // The transaction's row went with its rollback; the outside statement's stayed, on its own.
    const rows = await ctx.hot.changesAfter(ctx.tables, { afterSeq: head, limit: 10 });
    expect(rows.map((r) => [r.kind, r.ref])).toEqual([['epoch', 7]]);
  });
});
