// Epoch reports: begin, save (with its PostgreSQL path without a transaction), read and list.
import type { EntityManager } from '@mikro-orm/sql';
import { TrainingMetric } from './entities.ts';
import type { EpochRow, TableTransaction } from './hot-path.ts';
import { decodeNumber, encodeMetricMap, finiteOrNull, nonFiniteNames } from './number-codec.ts';
import {
  convertError,
  type EpochJobState,
  jobEnded,
  mapDriverError,
  notFound,
  type StoreContext,
} from './store-context.ts';
import { recordMetricSources, toEpochRecord } from './store-records.ts';
import type { EpochPage, EpochRecord, OutboxItemInput, SavedEpoch, SaveEpochInput } from './types.ts';

/** Two encoded metric maps hold the same names and values (in any order). */
function sameMetrics(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && Object.is(a[k], b[k]));
}

/** Epoch → the finite value of `name` of each stored epoch (for the best-epoch rule). */
function primaryValues(
  rows: ReadonlyArray<{ epoch: number; extraMetrics: Record<string, unknown> }>,
  name: string,
): Map<number, number> {
  const values = new Map<number, number>();
  for (const row of rows) {
    if (!Object.hasOwn(row.extraMetrics, name)) continue;
    const value = decodeNumber(row.extraMetrics[name]);
    if (Number.isFinite(value)) values.set(row.epoch, value);
  }
  return values;
}

/** Jobs whose last written row version a store keeps for its next epoch report (see epochJobs). */
const EPOCH_JOBS_KEPT = 4096;

/** An epoch report's row and outbox entries, as written. */
function epochReport(input: SaveEpochInput): { row: EpochRow; outbox: readonly OutboxItemInput[] } {
  return {
    row: {
      jobId: input.jobId,
      epoch: input.epoch,
      loss: finiteOrNull(input.columns.loss),
      accuracy: finiteOrNull(input.columns.accuracy),
      learningRate: finiteOrNull(input.columns.learningRate),
      extraMetrics: encodeMetricMap(input.metrics),
      nonFinite: nonFiniteNames(input.metrics),
      timestamp: input.timestamp,
    },
    outbox: input.outbox ?? [],
  };
}

export async function beginEpoch(ctx: StoreContext, jobId: string, epoch: number, at: Date): Promise<void> {
  const hot = ctx.hot;
  const status = ctx.rowLocks
    ? // One statement, autocommitted: the job row's share lock and the begin (see writeEpochBegin).
      await hot.writeEpochBegin(ctx.tables, jobId, epoch, at).catch((error: unknown) => {
        throw mapDriverError(convertError(ctx.orm.em as EntityManager, error), jobId);
      })
    : await ctx.tableTransaction(jobId, async (trx) => {
        const status = await hot.lockJobShared(trx, jobId);
        if (status === 'running') await hot.upsertEpochBegin(trx, jobId, epoch, at);
        return status;
      });
  if (status === undefined) throw notFound(jobId);
  if (status !== 'running') throw jobEnded(jobId, status);
}

export async function saveEpoch(ctx: StoreContext, input: SaveEpochInput): Promise<SavedEpoch> {
  const { jobId } = input;
  const report = epochReport(input);
  // PostgreSQL, a job this store reported before: one autocommitted statement decided from the job
  // row's version then, written only while it is still the row's version (see writeEpochReport).
  // Renames and unit changes have their own statement (recordMetricSources): the locked path.
  const known = ctx.rowLocks && !input.metricSources?.sources.length && ctx.epochJobs.get(jobId);
  if (known) {
    const saved = await saveEpochFrom(ctx, known, input, report);
    if (saved) {
      ctx.committed.fire(jobId);
      return saved;
    }
    ctx.epochJobs.delete(jobId);
  }
  const saved = await ctx.tableTransaction(jobId, (trx) => saveEpochLocked(ctx, trx, input, report));
  ctx.committed.fire(jobId);
  return saved;
}

/**
 * An epoch report decided from `known` (the job row as this store last wrote it) without a
 * transaction: the best epoch is decided first, from `known`'s incumbent and, when the rule asks,
 * the other epochs read now; writeEpochReport writes it only if no write of the job (a report, an
 * end, a resume: each makes a new row version) came in between. Undefined: one did, decide again.
 */
async function saveEpochFrom(
  ctx: StoreContext,
  known: EpochJobState,
  input: SaveEpochInput,
  report: ReturnType<typeof epochReport>,
): Promise<SavedEpoch | undefined> {
  const { jobId, epoch } = input;
  const hot = ctx.hot;
  try {
    const rule = input.best;
    const best =
      typeof rule === 'function'
        ? await rule(known.best, async () =>
            primaryValues(await hot.otherEpochMetrics(ctx.tables, jobId, epoch), known.primaryMetric),
          )
        : rule;
    const written = await hot.writeEpochReport(ctx.tables, {
      row: report.row,
      version: known.version,
      best,
      updatedAt: new Date(),
      outbox: report.outbox,
      nowMs: Date.now(),
    });
    if (!written) return undefined;
    rememberEpochJob(ctx, jobId, { version: written.version, best, primaryMetric: known.primaryMetric });
    return { best, epochsReported: written.epochsReported, isNew: written.isNew };
  } catch (error) {
    throw mapDriverError(convertError(ctx.orm.em as EntityManager, error), jobId);
  }
}

/**
 * An epoch report under the job row's lock (or, on SQLite, the database's). An EndTraining on any
 * sidecar either committed before (refused here) or commits after this epoch, and two reports of
 * the job never both decide the best epoch from the same incumbent. The same statement's indexed
 * lookup of the epoch row tells whether this epoch is new; counting the job's epochs instead would
 * cost O(epochs) on every report.
 */
async function saveEpochLocked(
  ctx: StoreContext,
  trx: TableTransaction,
  input: SaveEpochInput,
  report: ReturnType<typeof epochReport>,
): Promise<SavedEpoch> {
  const { jobId, epoch } = input;
  const hot = ctx.hot;
  const locked = await hot.lockJobForEpoch(trx, jobId, epoch);
  if (!locked) throw notFound(jobId);
  const { job, previous } = locked;
  if (job.status !== 'running') throw jobEnded(jobId, job.status);
  const incumbent =
    job.bestEpoch === null || job.bestValue === null ? null : { epoch: job.bestEpoch, value: job.bestValue };
  const rule = input.best;
  const best =
    typeof rule === 'function'
      ? await rule(incumbent, async () =>
          primaryValues(await hot.otherEpochMetrics(trx, jobId, epoch), job.primaryMetric),
        )
      : rule;
  // Renames and unit changes first: their item goes ahead of the epoch's in the outbox.
  if (input.metricSources) await recordMetricSources(hot, trx, jobId, input.metricSources);
  if (job.version !== undefined) {
    // PostgreSQL: the writes in one call (tc_save_epoch), from the version locked (it cannot have changed).
    const written = await hot.writeEpochReport(trx, {
      row: report.row,
      version: job.version,
      best,
      updatedAt: new Date(),
      outbox: report.outbox,
      nowMs: Date.now(),
    });
    if (!written) throw new Error(`epoch report of job ${JSON.stringify(jobId)}: the locked row changed`);
    rememberEpochJob(ctx, jobId, { version: written.version, best, primaryMetric: job.primaryMetric });
    return { best, epochsReported: written.epochsReported, isNew: written.isNew };
  }
  const isNew = previous === undefined || !previous.reported;
  await hot.upsertEpoch(trx, report.row);
  await hot.updateJobAfterEpoch(trx, jobId, { increment: isNew ? 1 : 0, best, updatedAt: new Date() });
  // A resent report with the very same metrics has nothing new to mirror.
  if (report.outbox.length && (isNew || !sameMetrics(previous.extraMetrics, report.row.extraMetrics))) {
    await hot.insertOutbox(trx, jobId, report.outbox, Date.now());
  }
  await hot.appendChanges(trx, jobId, 'epoch', [epoch]);
  return { best, epochsReported: job.epochsReported + (isNew ? 1 : 0), isNew };
}

/**
 * Remembers the job row's version this store wrote (see epochJobs); the oldest entry goes when
 * there are too many. If the transaction that wrote it does not commit, the version never becomes
 * the row's and the next report just misses.
 */
export function rememberEpochJob(ctx: StoreContext, jobId: string, state: EpochJobState): void {
  ctx.epochJobs.delete(jobId);
  ctx.epochJobs.set(jobId, state);
  if (ctx.epochJobs.size > EPOCH_JOBS_KEPT) {
    ctx.epochJobs.delete(ctx.epochJobs.keys().next().value as string);
  }
}

export async function listEpochs(
  ctx: StoreContext,
  jobId: string,
  page: EpochPage = {},
): Promise<EpochRecord[]> {
  const rows = await ctx.em().find(
    TrainingMetric,
    {
      job: jobId,
      timestamp: { $ne: null },
      ...(page.afterEpoch !== undefined && { epoch: { $gt: page.afterEpoch } }),
    },
    {
      orderBy: { epoch: 'asc' },
      disableIdentityMap: true,
      ...(page.limit !== undefined && { limit: Math.max(1, Math.floor(page.limit)) }),
    },
  );
  return rows.map((row) => toEpochRecord(jobId, row));
}

// getJob, getEpoch and getBatchBlock serve the watch streams, hundreds of times a second: on the
// table view, bound keys (one prepared statement each), no entity hydrated.
export async function getEpoch(
  ctx: StoreContext,
  jobId: string,
  epoch: number,
): Promise<EpochRecord | undefined> {
  const row = await ctx.hot.reportedEpoch(ctx.tables, jobId, epoch);
  return row ? toEpochRecord(jobId, row as unknown as TrainingMetric) : undefined;
}
