// The change feed (see change-feed.ts): reading and compacting it, its bounds, commit listeners.

import { compactChanges as deleteChanges } from './hot-path.ts';
import type { StoreContext } from './store-context.ts';
import type { ChangePosition, ChangeRecord, ChangesQuery } from './types.ts';

export async function readChanges(ctx: StoreContext, query: ChangesQuery): Promise<ChangeRecord[]> {
  const limit = Math.max(1, Math.floor(query.limit));
  const rows = await ctx.hot.changesAfter(ctx.tables, {
    afterSeq: query.afterSeq,
    limit,
    ...(query.jobId !== undefined && { jobId: query.jobId }),
  });
  return rows.map((r) => ({ seq: r.seq, jobId: r.jobId, kind: r.kind, ref: r.ref }));
}

export async function compactChanges(
  ctx: StoreContext,
  range: { fromSeq: number; toSeq: number },
): Promise<number> {
  if (!(range.toSeq > range.fromSeq)) return 0;
  return ctx.tableTransaction('', (trx) => deleteChanges(trx, range.fromSeq, range.toSeq));
}

export async function firstSeq(ctx: StoreContext): Promise<number> {
  const row = await ctx
    .kysely()
    .selectFrom('StoreChange')
    .select((eb) => eb.fn.min('seq').as('first'))
    .executeTakeFirst();
  return row?.first == null ? 0 : Number(row.first);
}

export async function headSeq(ctx: StoreContext): Promise<number> {
  return ctx.hot.headSeq(ctx.tables);
}

export async function changeSeqAt(ctx: StoreContext, at: ChangePosition): Promise<number | undefined> {
  return ctx.hot.changeSeqAt(ctx.tables, at);
}

export function onCommit(ctx: StoreContext, listener: (jobId: string | undefined) => void): () => void {
  return ctx.committed.add(listener);
}
