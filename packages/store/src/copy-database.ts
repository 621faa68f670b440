// Copies one store's database into another, table by table — the way from an SQLite file to a shared
// PostgreSQL (or back). Both schemas come from the same entities, so every row is read through the
// entities' types on one dialect and written through them on the other: dates, JSON, blobs and 64-bit
// integers convert as the store itself converts them. Ids are kept (the outbox and the change feed refer
// to rows by id), and PostgreSQL's sequences (and the feed's seqs) are moved past the copied ids afterwards.
import { existsSync } from 'node:fs';
import type { MikroORM } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import { sql } from 'kysely';
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';
import { dialectOf, openDialectOrm } from './store.ts';

/** The tables in an order that keeps every foreign key satisfied, with their primary key. */
const TABLES = [
  ['TrainingJob', 'training_job', 'jobId'],
  ['TrainingMetric', 'training_metric', 'id'],
  ['BatchMetricBlock', 'batch_metric_block', 'id'],
  ['Artifact', 'artifact', 'id'],
  ['OutboxItem', 'outbox_item', 'id'],
  ['StoreChange', 'store_change', 'seq'],
  ['MetricSource', 'metric_source', 'id'],
] as const satisfies ReadonlyArray<readonly [keyof StoreDB, string, string]>;

/** Rows per page: blocks are up to a few hundred KiB each, and SQLite binds at most 32,766 values. */
const PAGE_ROWS = 200;

/** Progress of {@link copyDatabase}: a table finished (or `rows` so far of a long one). */
export interface CopyProgress {
  table: string;
  rows: number;
  done: boolean;
}

/** What {@link copyDatabase} copied: rows per table. */
export type CopyResult = Record<string, number>;

/** A refusal to copy, with what to do. */
export class CopyRefusedError extends Error {
  override readonly name = 'CopyRefusedError';
}

function entityKysely(orm: MikroORM) {
  return (orm.em.fork() as EntityManager).getKysely<StoreDB>(KYSELY_OPTIONS);
}

/**
 * Copies every row of the store at `from` into the store at `to` (an SQLite file path or a
 * `postgres://` URL each; migrations are applied to both first). The destination must hold no job:
 * the copy is a move to a new database, not a merge. Stop the sidecars on both first — rows written
 * during the copy may be missed. The destination is written in one transaction per table page; a copy
 * that fails half-way leaves rows behind: empty the destination (or create it again) and copy again.
 */
export async function copyDatabase(
  from: string,
  to: string,
  onProgress: (progress: CopyProgress) => void = () => {},
): Promise<CopyResult> {
  if (dialectOf(from) === 'sqlite' && (from === ':memory:' || !existsSync(from))) {
    throw new CopyRefusedError(
      `there is no database at ${from}: give the SQLite file the sidecar used (its --db)`,
    );
  }
  const source = await openDialectOrm({ dbPath: from });
  try {
    const target = await openDialectOrm({ dbPath: to });
    try {
      const src = entityKysely(source.orm);
      const dst = entityKysely(target.orm);
      const existing = await dst
        .selectFrom('TrainingJob')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .executeTakeFirstOrThrow();
      if (Number(existing.n) > 0) {
        throw new CopyRefusedError(
          `the destination already holds ${existing.n} job(s): copy into an empty database (a new one, or ` +
            'drop and create it again), so that no job is merged with another of the same id',
        );
      }
      const result: CopyResult = {};
      for (const [entity, table, key] of TABLES) {
        let rows = 0;
        let after: unknown;
        for (;;) {
          let page = src
            .selectFrom(entity)
            .selectAll()
            .orderBy(key as never)
            .limit(PAGE_ROWS);
          if (after !== undefined) page = page.where(key as never, '>', after as never);
          const batch = (await page.execute()) as Array<Record<string, unknown>>;
          if (batch.length === 0) break;
          await dst
            .insertInto(entity)
            .values(batch as never)
            .execute();
          rows += batch.length;
          after = batch.at(-1)![key];
          if (batch.length === PAGE_ROWS) onProgress({ table, rows, done: false });
          if (batch.length < PAGE_ROWS) break;
        }
        result[table] = rows;
        onProgress({ table, rows, done: true });
        if (target.dialect === 'postgresql' && table === 'store_change') await rebaseFeed(target.orm);
        else if (target.dialect === 'postgresql' && key !== 'jobId')
          await moveSequence(target.orm, table, key);
      }
      return result;
    } finally {
      await target.orm.close(true);
    }
  } finally {
    await source.orm.close(true);
  }
}

/**
 * Moves the feed's seqs past the largest copied one (PostgreSQL's come from the writing transaction,
 * counted from a base: migration `feed_ordered_by_transaction`), so new rows follow the copied ones.
 */
async function rebaseFeed(orm: MikroORM): Promise<void> {
  await sql`select tc_feed_rebase()`.execute((orm.em.fork() as EntityManager).getKysely());
}

/** Moves a serial column's sequence past the largest copied id, so new rows do not collide with them. */
async function moveSequence(orm: MikroORM, table: string, column: string): Promise<void> {
  await sql`select setval(pg_get_serial_sequence(${table}, ${column}),
    coalesce((select max(${sql.ref(column)}) from ${sql.table(table)}), 0) + 1, false)`.execute(
    (orm.em.fork() as EntityManager).getKysely(),
  );
}
