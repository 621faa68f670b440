// Batch metric blocks: appending a stream's points, listing and reading the blocks, their step range.
import type { EntityManager } from '@mikro-orm/sql';
import { planBatchWrite, stepBounds } from './batch-points.ts';
import { BatchMetricBlock } from './entities.ts';
import { BLOCKS_PER_STATEMENT, type BlockInsert } from './hot-path.ts';
import {
  packFloat64,
  packInt64,
  unpackFloat64,
  unpackInt64,
  viewFloat64,
  viewInt64,
} from './number-codec.ts';
import { convertError, jobEnded, mapDriverError, notFound, type StoreContext } from './store-context.ts';
import { recordMetricSources } from './store-records.ts';
import type {
  BatchAppendResult,
  BatchBlock,
  BatchBlockPage,
  ListedBatchBlock,
  Store,
  StoredBatchBlock,
} from './types.ts';

/**
 * Most points of a batch append written in one call on PostgreSQL (see HotPath.writeBatchAppend): the
 * call's arrays travel as text (bytea in hex, twice the bytes), which costs nothing next to six round
 * trips for a short stream but more than they do for a long one (those take the transaction, whose
 * blobs are bound as binary parameters).
 */
const ONE_CALL_MAX_POINTS = 16_384;

function toBatchBlock(row: BatchMetricBlock): BatchBlock {
  return {
    epoch: row.epoch,
    names: row.names,
    steps: unpackInt64(row.steps),
    values: unpackFloat64(row.values),
  };
}

/** A block's row: its step bounds, and its steps and values packed little-endian. */
function blockRow(block: BatchBlock): BlockInsert {
  const { min, max } = stepBounds(block.steps);
  return {
    epoch: block.epoch,
    firstStep: min,
    lastStep: max,
    names: block.names,
    steps: packInt64(block.steps),
    values: packFloat64(block.values),
  };
}

function checkBlock(block: BatchBlock): void {
  if (block.values.length !== block.steps.length * block.names.length) {
    throw new RangeError(
      `batch block of epoch ${block.epoch}: ${block.values.length} values for ` +
        `${block.steps.length} steps × ${block.names.length} names`,
    );
  }
}

/** The options of {@link Store.appendBatchBlocks} (documented there). */
export type BatchAppendOptions = NonNullable<Parameters<Store['appendBatchBlocks']>[2]>;

export async function appendBatchBlocks(
  ctx: StoreContext,
  jobId: string,
  blocks: readonly BatchBlock[],
  options: BatchAppendOptions = {},
): Promise<BatchAppendResult> {
  for (const block of blocks) checkBlock(block);
  const incoming = blocks.filter((block) => block.steps.length > 0);
  const result: BatchAppendResult = { unchangedPoints: 0, replacedPoints: 0 };
  if (incoming.length === 0) return result;
  const receivedAtMs = options.receivedAtMs ?? Date.now();
  const outboxKind = options.outboxKind;
  let lo = stepBounds(incoming[0]!.steps).min;
  let hi = lo;
  for (const block of incoming) {
    const { min, max } = stepBounds(block.steps);
    if (min < lo) lo = min;
    if (max > hi) hi = max;
  }
  const hot = ctx.hot;
  const points = incoming.reduce((sum, block) => sum + block.values.length, 0);
  // PostgreSQL, a short write that meets no stored block (the usual stream): one autocommitted call
  // (see writeBatchAppend). A write that meets stored blocks, records new metric sources or carries
  // many points takes the transaction below.
  if (ctx.rowLocks && !options.metricSources?.sources.length && points <= ONE_CALL_MAX_POINTS) {
    const plan = planBatchWrite(incoming, []);
    if (plan.inserts.length <= BLOCKS_PER_STATEMENT) {
      const written = await hot
        .writeBatchAppend(ctx.tables, {
          jobId,
          firstStep: lo,
          lastStep: hi,
          blocks: plan.inserts.map(blockRow),
          receivedAtMs,
          outboxKind,
          nowMs: Date.now(),
        })
        .catch((error: unknown) => {
          throw mapDriverError(convertError(ctx.orm.em as EntityManager, error), jobId);
        });
      if (!written) throw notFound(jobId);
      if (written.status !== 'running') throw jobEnded(jobId, written.status);
      if (written.ids.length > 0) {
        ctx.committed.fire(jobId);
        return { unchangedPoints: plan.unchangedPoints, replacedPoints: plan.replacedPoints };
      }
    }
  }
  const changed = await ctx.batchTransaction(jobId, points, async (trx) => {
    // The job row is locked FOR SHARE (SQLite: the database) until the commit, so a stream racing
    // an end is stored before it or refused; the same statement reads the stored blocks that meet
    // the write's step range, the only ones that can hold its points (see batch-points.ts).
    const locked = await hot.lockJobForBatch(trx, jobId, { firstStep: lo, lastStep: hi });
    if (!locked) throw notFound(jobId);
    if (locked.status !== 'running') throw jobEnded(jobId, locked.status);
    if (options.metricSources) await recordMetricSources(hot, trx, jobId, options.metricSources);
    const { overlapping } = locked;
    const plan = planBatchWrite(
      incoming,
      overlapping.map((row) => ({
        id: row.id,
        epoch: row.epoch,
        names: row.names,
        steps: unpackInt64(row.steps),
        values: unpackFloat64(row.values),
      })),
    );
    result.unchangedPoints = plan.unchangedPoints;
    result.replacedPoints = plan.replacedPoints;
    /** The feed's refs, appended last (see HotPath.appendChanges). */
    const changed: number[] = [];
    const insertBlocks = async (blocks: readonly BatchBlock[], at: number, kind: string | undefined) => {
      if (blocks.length === 0) return;
      const ids = await hot.insertBlocks(trx, jobId, blocks.map(blockRow), at);
      changed.push(...ids);
      if (kind !== undefined) await hot.insertBlockOutbox(trx, jobId, kind, ids, Date.now());
    };
    for (const { id, pieces } of plan.rewrites) {
      // A pending outbox entry of the block must also send the pieces cut from it; once
      // delivered, what remains was sent already.
      const pendingKind = await hot.pendingBlockEntryKind(trx, id);
      const before = overlapping.find((row) => row.id === id)!;
      const at = before.receivedAtMs ?? receivedAtMs;
      const [first, ...rest] = pieces;
      if (first === undefined) {
        await hot.deleteBlock(trx, id);
        continue;
      }
      await hot.updateBlock(trx, id, blockRow(first));
      changed.push(id);
      await insertBlocks(rest, at, pendingKind);
    }
    await insertBlocks(plan.inserts, receivedAtMs, outboxKind);
    await hot.appendChanges(trx, jobId, 'batch', changed);
    return changed.length;
  });
  if (changed > 0) ctx.committed.fire(jobId);
  return result;
}

export async function listBatchBlocks(
  ctx: StoreContext,
  jobId: string,
  epoch?: number,
  page: BatchBlockPage = {},
): Promise<ListedBatchBlock[]> {
  const after = page.after;
  const rows = await ctx.em().find(
    BatchMetricBlock,
    {
      job: jobId,
      ...(epoch !== undefined && { epoch }),
      // Keyset: the block `after` names itself comes again (a page may end inside it).
      ...(after && {
        $or: [
          { firstStep: { $gt: after.firstStep } },
          { firstStep: after.firstStep, id: { $gte: after.id } },
        ],
      }),
    },
    {
      orderBy: [{ firstStep: 'asc' }, { id: 'asc' }],
      disableIdentityMap: true,
      ...(page.limit !== undefined && { limit: Math.max(1, Math.floor(page.limit)) }),
    },
  );
  return rows.map((row) => ({ ...toBatchBlock(row), id: row.id, firstStep: BigInt(row.firstStep) }));
}

export async function getBatchBlock(ctx: StoreContext, id: number): Promise<StoredBatchBlock | undefined> {
  const block = await ctx.hot.blockById(ctx.tables, id);
  if (!block) return undefined;
  return {
    id,
    jobId: block.jobId,
    epoch: block.epoch,
    names: block.names,
    steps: unpackInt64(block.steps),
    values: unpackFloat64(block.values),
  };
}

export async function readBatchBlocks(
  ctx: StoreContext,
  jobId: string,
  query: { afterId: number; limit: number; minStep?: bigint; maxStep?: bigint },
): Promise<StoredBatchBlock[]> {
  const where: Record<string, unknown> = { job: jobId, id: { $gt: query.afterId } };
  if (query.minStep !== undefined) where.lastStep = { $gte: query.minStep };
  if (query.maxStep !== undefined) where.firstStep = { $lte: query.maxStep };
  const rows = await ctx.em().find(BatchMetricBlock, where, {
    orderBy: { id: 'asc' },
    limit: Math.max(1, Math.floor(query.limit)),
    disableIdentityMap: true,
  });
  // Read in place (no copy of the blobs): a series read walks every point of a job on each chart load.
  return rows.map((row) => ({
    id: row.id,
    jobId,
    epoch: row.epoch,
    names: row.names,
    steps: viewInt64(row.steps),
    values: viewFloat64(row.values),
  }));
}

export async function batchStepRange(
  ctx: StoreContext,
  jobId: string,
): Promise<{ first: bigint; last: bigint } | undefined> {
  const row = await ctx
    .kysely()
    .selectFrom('BatchMetricBlock')
    .select((eb) => [eb.fn.min('firstStep').as('first'), eb.fn.max('lastStep').as('last')])
    .where('job', '=', jobId)
    .executeTakeFirst();
  if (row?.first == null || row.last == null) return undefined;
  return { first: BigInt(row.first as never), last: BigInt(row.last as never) };
}
