// A job's MLflow mirror: its run ids, the mirror's own state, and re-mirroring (replaceOutbox).
import type { TrainingJob, TrainingMetric } from './entities.ts';
import { mirrorStateQuery } from './outbox-queries.ts';
import { mirrorStateOf } from './outbox-rows.ts';
import { INSERT_CHUNK_ROWS, notFound, outboxRows, type StoreContext } from './store-context.ts';
import { toEpochRecord, toJobRecord } from './store-records.ts';
import type { JobRecord, JobSnapshot, MirrorState, OutboxItemInput } from './types.ts';

/** Outbox rows referring to blocks: the points stay in `batch_metric_block`. */
function blockOutboxRows(jobId: string, kind: string, blockIds: readonly number[], nowMs: number) {
  return blockIds.map((blockId) => ({
    job: jobId,
    kind,
    payload: null,
    blockId,
    createdAtMs: nowMs,
    attempts: 0,
    nextAttemptAtMs: nowMs,
    lastError: null,
    parkedError: null,
  }));
}

export async function setMlflowIds(
  ctx: StoreContext,
  jobId: string,
  experimentId: string,
  runId: string,
): Promise<void> {
  await ctx.transaction(jobId, async (trx) => {
    const result = await trx
      .updateTable('TrainingJob')
      .set({ mlflowExperimentId: experimentId, mlflowRunId: runId, updatedAt: new Date() })
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw notFound(jobId);
    ctx.appendChanges(trx, jobId, 'mlflow');
  });
}

export async function getMirrorState(ctx: StoreContext, jobId: string): Promise<MirrorState | undefined> {
  const row = await mirrorStateQuery(ctx.kysely(), { jobId }).executeTakeFirst();
  return row ? mirrorStateOf(row) : undefined;
}

export async function saveMirrorState(ctx: StoreContext, jobId: string, state: MirrorState): Promise<void> {
  await ctx.transaction(jobId, async (trx) => {
    const result = await trx
      .updateTable('TrainingJob')
      .set({
        mlflowExperimentId: state.experimentId ?? '',
        mlflowRunId: state.runId ?? '',
        mlflowArtifactUri: state.artifactUri ?? '',
        mlflowMetricKeys: state.metricKeys ?? null,
      })
      .where('jobId', '=', jobId)
      .executeTakeFirst();
    if (result.numUpdatedRows === 0n) throw notFound(jobId);
    ctx.appendChanges(trx, jobId, 'mlflow');
  });
}

export async function replaceOutbox(
  ctx: StoreContext,
  jobId: string,
  build: (job: JobSnapshot) => { before: OutboxItemInput[]; blockKind: string; after: OutboxItemInput[] },
  nowMs: number,
): Promise<{ dropped: number; queued: number; job: JobRecord }> {
  const result = await ctx.transaction(jobId, async (trx) => {
    // Under the job row's lock, everything read in this transaction: no end, resume or epoch of the
    // job (saveEpoch writes the row) on any sidecar commits between the copy and the drop of the
    // entries it replaces, and batch blocks and artifacts wait on the row's share lock.
    await ctx.lockJob(trx, jobId, 'update');
    const row = await trx
      .selectFrom('TrainingJob')
      .selectAll()
      .where('jobId', '=', jobId)
      .executeTakeFirstOrThrow();
    const job = toJobRecord(row as unknown as TrainingJob);
    const epochRows = await trx
      .selectFrom('TrainingMetric')
      .select([
        'epoch',
        'loss',
        'accuracy',
        'learningRate',
        'extraMetrics',
        'nonFinite',
        'timestamp',
        'beganAt',
      ])
      .where('job', '=', jobId)
      .where('timestamp', 'is not', null)
      .orderBy('epoch')
      .execute();
    const epochs = epochRows.map((r) => toEpochRecord(jobId, r as unknown as TrainingMetric));
    const metricSources = (
      await trx
        .selectFrom('MetricSource')
        .select(['name', 'reported', 'scale'])
        .where('job', '=', jobId)
        .orderBy('id')
        .execute()
    ).map((r) => ({ name: r.name, reported: r.reported, scale: Number(r.scale) }));
    const artifacts = await trx
      .selectFrom('Artifact')
      .select(['artifactPath', 'storedPath', 'sizeBytes', 'sha256'])
      .where('job', '=', jobId)
      .orderBy('artifactPath')
      .execute();
    const blocks = await trx
      .selectFrom('BatchMetricBlock')
      .select('id')
      .where('job', '=', jobId)
      .orderBy('id')
      .execute();
    const { before, blockKind, after } = build({
      job,
      epochs,
      metricSources,
      artifacts: artifacts.map((a) => ({ ...a, sizeBytes: Number(a.sizeBytes) })),
    });
    const deleted = await trx.deleteFrom('OutboxItem').where('job', '=', jobId).executeTakeFirst();
    await trx
      .updateTable('TrainingJob')
      .set({ mlflowExperimentId: '', mlflowRunId: '', mlflowArtifactUri: '', mlflowMetricKeys: null })
      .where('jobId', '=', jobId)
      .execute();
    ctx.appendChanges(trx, jobId, 'mlflow');
    const rows = [
      ...outboxRows(jobId, before, nowMs),
      ...blockOutboxRows(
        jobId,
        blockKind,
        blocks.map((b) => Number(b.id)),
        nowMs,
      ),
      ...outboxRows(jobId, after, nowMs),
    ];
    for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
      await trx
        .insertInto('OutboxItem')
        .values(rows.slice(i, i + INSERT_CHUNK_ROWS))
        .execute();
    }
    return { dropped: Number(deleted.numDeletedRows), queued: rows.length, job };
  });
  return { ...result, job: { ...result.job, mlflowExperimentId: '', mlflowRunId: '' } };
}
