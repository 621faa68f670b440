// The jobs: registering (createOrGetJob), resuming (reopenJob), reading and listing them, ending them.
import { sql } from 'kysely';
import { TrainingJob } from './entities.ts';
import { encodeJsonTree, encodeMetricMap, finiteOrNull } from './number-codec.ts';
import {
  alreadyEnded,
  notFound,
  outboxRows,
  type StoreContext,
  type StoreTransaction,
} from './store-context.ts';
import { rememberEpochJob } from './store-epochs.ts';
import { StoreError } from './store-error.ts';
import { leaseColumns, toJobRecord, trainerProcessKey } from './store-records.ts';
import type {
  EndJobInput,
  JobRecord,
  ListJobsPage,
  ListJobsQuery,
  NewJob,
  OutboxWrite,
  ReopenJobChanges,
  TrainerRecord,
} from './types.ts';

/** The trainer columns of a BeginTraining (null: none sent). */
function trainerColumns(trainer: TrainerRecord | null) {
  return {
    trainer,
    trainerSession: trainer?.sessionId ?? '',
    trainerProcess: trainerProcessKey(trainer),
  };
}

/** A config → its stored form, NaN and ±Infinity kept (see `encodeJsonTree`). */
function encodeConfig(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return encodeJsonTree(config) as Record<string, unknown>;
}

/** Opaque keyset cursor: the last job of a page, as base64url JSON [createdAtMs, jobId]. */
function encodeCursor(job: JobRecord): string {
  return Buffer.from(JSON.stringify([job.createdAt.getTime(), job.jobId])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: Date; jobId: string } {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(parsed) &&
      parsed.length === 2 &&
      Number.isSafeInteger(parsed[0]) &&
      typeof parsed[1] === 'string'
    ) {
      return { createdAt: new Date(parsed[0] as number), jobId: parsed[1] };
    }
  } catch {
    // fall through
  }
  throw new StoreError('invalid_argument', 'unreadable list cursor: pass back a nextCursor unchanged');
}

export async function createOrGetJob(
  ctx: StoreContext,
  job: NewJob,
  options: OutboxWrite = {},
): Promise<{ job: JobRecord; created: boolean }> {
  const created = await ctx.transaction(job.jobId, async (trx) => {
    const now = new Date();
    // ON CONFLICT DO NOTHING: two sidecars creating the same job at once both answer; one creates it.
    const insert = trx
      .insertInto('TrainingJob')
      .values({
        jobId: job.jobId,
        task: job.task,
        framework: job.framework,
        modelName: job.modelName,
        status: 'running',
        modelConfig: encodeConfig(job.modelConfig),
        trainingConfig: encodeConfig(job.trainingConfig),
        params: job.params,
        runName: job.runName ?? '',
        tags: job.tags ?? {},
        customMetrics: job.customMetrics,
        startEpoch: job.startEpoch,
        epochsReported: 0,
        primaryMetric: job.primaryMetric,
        bestEpoch: null,
        bestValue: null,
        finalMetrics: {},
        finalPrimaryValue: null,
        finalAccuracy: null,
        errorMessage: '',
        mlflowExperimentId: '',
        mlflowRunId: '',
        mlflowArtifactUri: '',
        mlflowMetricKeys: null,
        createdAt: now,
        updatedAt: now,
        endedAt: null,
        endCause: '',
        endReason: '',
        ...trainerColumns(job.trainer ?? null),
        ...(job.leaseMs !== undefined
          ? leaseColumns(now.getTime(), job.leaseMs)
          : { lastSeenAtMs: null, leaseExpiresAtMs: null }),
      })
      .onConflict((oc) => oc.column('jobId').doNothing());
    if (ctx.rowLocks) {
      // PostgreSQL: the new row's version, so that the job's first epoch report is one call too.
      const row = await insert.returning(sql<string>`xmin::text`.as('version')).executeTakeFirst();
      if (!row) return false;
      rememberEpochJob(ctx, job.jobId, {
        version: row.version,
        best: null,
        primaryMetric: job.primaryMetric,
      });
    } else if (!(await insert.executeTakeFirst()).numInsertedOrUpdatedRows) return false;
    ctx.appendChanges(trx, job.jobId, 'job');
    if (options.outbox?.length)
      await trx
        .insertInto('OutboxItem')
        .values(outboxRows(job.jobId, options.outbox, Date.now()))
        .execute();
    return true;
  });
  return { job: await ctx.readJob(job.jobId), created };
}

export async function reopenJob(
  ctx: StoreContext,
  jobId: string,
  changes: ReopenJobChanges,
): Promise<JobRecord> {
  await ctx.transaction(jobId, async (trx) => {
    const job = await ctx.lockJob(trx, jobId, 'update');
    const from = changes.from;
    // The caller decided on the job as it read it: if another sidecar changed its state since (an
    // end, a verdict, another resume), the decision may not hold, so nothing is written.
    if (from && (job.status !== from.status || job.endCause !== (from.endCause ?? ''))) {
      throw new StoreError(
        'conflict',
        `job ${JSON.stringify(jobId)} changed meanwhile (${from.status} → ${job.status}); read it again`,
      );
    }
    const result = await trx
      .updateTable('TrainingJob')
      .set({
        startEpoch: changes.startEpoch,
        status: 'running',
        endedAt: null,
        endCause: '',
        endReason: '',
        updatedAt: new Date(),
        ...(changes.trainer !== undefined && trainerColumns(changes.trainer)),
        ...(changes.leaseMs !== undefined && leaseColumns(Date.now(), changes.leaseMs)),
        ...(changes.modelConfig !== undefined && { modelConfig: encodeConfig(changes.modelConfig) }),
        ...(changes.trainingConfig !== undefined && {
          trainingConfig: encodeConfig(changes.trainingConfig),
        }),
        ...(changes.params !== undefined && { params: changes.params }),
        ...(changes.runName !== undefined && { runName: changes.runName }),
        ...(changes.tags !== undefined && { tags: changes.tags }),
        ...(changes.customMetrics !== undefined && { customMetrics: changes.customMetrics }),
      })
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw notFound(jobId);
    ctx.appendChanges(trx, jobId, 'job');
    if (changes.outbox?.length)
      await trx
        .insertInto('OutboxItem')
        .values(outboxRows(jobId, changes.outbox, Date.now()))
        .execute();
  });
  return ctx.readJob(jobId);
}

export async function getJob(ctx: StoreContext, jobId: string): Promise<JobRecord | undefined> {
  const row = await ctx.hot.jobById(ctx.tables, jobId);
  return row ? toJobRecord(row as unknown as TrainingJob) : undefined;
}

export async function listJobs(ctx: StoreContext, query: ListJobsQuery): Promise<ListJobsPage> {
  const limit = Math.max(1, Math.floor(query.limit));
  const where: Record<string, unknown> = {};
  if (query.status !== undefined) where.status = query.status;
  if (query.task !== undefined) where.task = query.task;
  if (query.cursor !== undefined) {
    const after = decodeCursor(query.cursor);
    where.$or = [
      { createdAt: { $lt: after.createdAt } },
      { createdAt: after.createdAt, jobId: { $lt: after.jobId } },
    ];
  }
  const rows = await ctx.em().find(TrainingJob, where, {
    orderBy: [{ createdAt: 'desc' }, { jobId: 'desc' }],
    limit: limit + 1,
  });
  const jobs = rows.slice(0, limit).map(toJobRecord);
  const last = jobs[jobs.length - 1];
  const cursors = jobs.map(encodeCursor);
  return rows.length > limit && last ? { jobs, cursors, nextCursor: encodeCursor(last) } : { jobs, cursors };
}

export async function endJob(ctx: StoreContext, input: EndJobInput): Promise<JobRecord> {
  const { jobId } = input;
  await ctx.transaction(jobId, async (trx) => {
    // Conditional on the job running, read under the row's lock: of two ends racing on two
    // sidecars, one ends the job and the other meets `ended` (the caller decides what to answer).
    const job = await ctx.lockJob(trx, jobId, 'update');
    if (job.status !== 'running') throw alreadyEnded(jobId, job.status);
    const best = job.bestValue ?? undefined;
    const outbox =
      typeof input.outbox === 'function'
        ? input.outbox({ startEpoch: job.startEpoch, lastEpoch: await lastEpoch(trx, jobId) })
        : input.outbox;
    const result = await trx
      .updateTable('TrainingJob')
      .set({
        status: input.status,
        finalMetrics: encodeMetricMap(input.finalMetrics),
        finalPrimaryValue: finiteOrNull(input.finalPrimaryValue ?? best),
        finalAccuracy: finiteOrNull(
          input.finalAccuracy ?? (job.primaryMetric === 'accuracy' ? best : undefined),
        ),
        errorMessage: input.errorMessage,
        clientLosses:
          (typeof input.clientLosses === 'function'
            ? input.clientLosses(job.clientLosses ?? undefined)
            : input.clientLosses) ?? null,
        endedAt: input.endedAt,
        endCause: 'reported',
        endReason: '',
        leaseExpiresAtMs: null,
        updatedAt: new Date(),
      })
      .where('jobId', '=', jobId)
      .where('status', '=', 'running')
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw alreadyEnded(jobId, 'ended meanwhile');
    ctx.appendChanges(trx, jobId, 'job');
    if (outbox?.length)
      await trx
        .insertInto('OutboxItem')
        .values(outboxRows(jobId, outbox, Date.now()))
        .execute();
  });
  return ctx.readJob(jobId);
}

/** The job's highest reported epoch inside `trx` (undefined: none reported). */
async function lastEpoch(trx: StoreTransaction, jobId: string): Promise<number | undefined> {
  const row = await trx
    .selectFrom('TrainingMetric')
    .select((eb) => eb.fn.max('epoch').as('last'))
    .where('job', '=', jobId)
    .where('timestamp', 'is not', null)
    .executeTakeFirst();
  return row?.last == null ? undefined : Number(row.last);
}
