// Public records ↔ stored rows: the conversions more than one concern of the store shares.
import type { TrainingJob, TrainingMetric } from './entities.ts';
import type { HotPath, TableTransaction } from './hot-path.ts';
import { decodeJsonTree, decodeMetricMap, userKeyed } from './number-codec.ts';
import type { EndCause, EpochRecord, JobRecord, MetricSourcesWrite, TrainerRecord } from './types.ts';

/** A non-finite value of a nullable double column is NULL; the JSON entry `name` keeps the truth. */
export function restoreFromJson(
  column: number | null,
  json: Record<string, number>,
  name: string,
): number | undefined {
  if (column !== null) {
    return column;
  }
  const fromJson = json[name];
  return fromJson !== undefined && !Number.isFinite(fromJson) ? fromJson : undefined;
}

export function toJobRecord(job: TrainingJob): JobRecord {
  const finalMetrics = decodeMetricMap(job.finalMetrics);
  const record: JobRecord = {
    jobId: job.jobId,
    task: job.task,
    framework: job.framework,
    modelName: job.modelName,
    status: job.status,
    modelConfig: decodeConfig(job.modelConfig),
    trainingConfig: decodeConfig(job.trainingConfig),
    params: Object.assign(userKeyed<string>(), job.params),
    runName: job.runName ?? '',
    tags: Object.assign(userKeyed<string>(), job.tags ?? {}),
    customMetrics: job.customMetrics,
    startEpoch: job.startEpoch,
    epochsReported: job.epochsReported,
    primaryMetric: job.primaryMetric,
    finalMetrics,
    errorMessage: job.errorMessage,
    mlflowExperimentId: job.mlflowExperimentId,
    mlflowRunId: job.mlflowRunId,
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
    endReason: job.endReason ?? '',
  };
  if (job.bestEpoch != null) record.bestEpoch = job.bestEpoch;
  if (job.bestValue != null) record.bestValue = job.bestValue;
  const finalPrimaryValue = restoreFromJson(job.finalPrimaryValue ?? null, finalMetrics, job.primaryMetric);
  if (finalPrimaryValue !== undefined) record.finalPrimaryValue = finalPrimaryValue;
  const finalAccuracy = restoreFromJson(job.finalAccuracy ?? null, finalMetrics, 'accuracy');
  if (finalAccuracy !== undefined) record.finalAccuracy = finalAccuracy;
  if (job.endedAt != null) record.endedAt = job.endedAt;
  if (job.clientLosses != null) record.clientLosses = job.clientLosses;
  if (job.endCause) record.endCause = job.endCause as EndCause;
  if (job.lastSeenAtMs != null) record.lastSeenAt = new Date(job.lastSeenAtMs);
  if (job.leaseExpiresAtMs != null) record.leaseExpiresAt = new Date(job.leaseExpiresAtMs);
  if (job.trainer != null) record.trainer = job.trainer;
  return record;
}

/** `<boot id>/<pid>/<start time>` of a trainer named in full, else '' (no process evidence). */
export function trainerProcessKey(
  trainer: Pick<TrainerRecord, 'pid' | 'startTimeTicks' | 'bootId'> | null | undefined,
): string {
  if (!trainer?.bootId || !trainer.pid || trainer.startTimeTicks === '0') return '';
  return `${trainer.bootId}/${trainer.pid}/${trainer.startTimeTicks}`;
}

/** A fresh lease from `nowMs`. */
export function leaseColumns(nowMs: number, leaseMs: number) {
  return { lastSeenAtMs: nowMs, leaseExpiresAtMs: nowMs + leaseMs };
}

/** A config as stored (see `encodeJsonTree`) → as given. */
export function decodeConfig(stored: unknown): Record<string, unknown> {
  const tree = decodeJsonTree(stored ?? {});
  return tree !== null && typeof tree === 'object' && !Array.isArray(tree) ? tree : userKeyed();
}

export function toEpochRecord(jobId: string, row: TrainingMetric): EpochRecord {
  const record: EpochRecord = {
    jobId,
    epoch: row.epoch,
    metrics: decodeMetricMap(row.extraMetrics),
    nonFinite: row.nonFinite,
    // Listed rows are reported rows, whose timestamp is set.
    timestamp: row.timestamp!,
  };
  if (row.loss != null) record.loss = row.loss;
  if (row.accuracy != null) record.accuracy = row.accuracy;
  if (row.learningRate != null) record.learningRate = row.learningRate;
  if (row.beganAt != null) record.beganAt = row.beganAt;
  return record;
}

/**
 * Records the sources not recorded yet and queues `write.item` of them, inside `trx`. The unique index
 * decides (INSERT … ON CONFLICT DO NOTHING RETURNING): of two sidecars seeing a new rename at once, one
 * inserts it and queues it, the other's insert waits for that commit and returns nothing.
 */
export async function recordMetricSources(
  hot: HotPath,
  trx: TableTransaction,
  jobId: string,
  write: MetricSourcesWrite,
): Promise<void> {
  if (write.sources.length === 0) return;
  const added = await hot.recordMetricSources(trx, jobId, write.sources);
  if (added.length > 0) await hot.insertOutbox(trx, jobId, [write.item(added)], Date.now());
}
