// Entities of the store, defined with MikroORM 7's `defineEntity` (no decorators) plus a class each.
// They are dialect-neutral: nothing here names SQLite or PostgreSQL. Column types come from MikroORM's
// portable types (json, blob, double, datetime, bigint), and each dialect's migrations spell them out.
//
// JSON columns never hold NaN or ±Infinity: they hold the encoded form produced by `number-codec.ts`.
import { defineEntity, p } from '@mikro-orm/core';
import type { EncodedNumber } from './number-codec.ts';

/** The statuses a job can be in; stored as text with a check constraint. */
export const JOB_STATUSES = ['running', 'completed', 'failed', 'cancelled'] as const;

/** Display format of a custom metric, as stored in `training_job.custom_metrics`. */
export interface StoredCustomMetric {
  name: string;
  label: string;
  format: 'percent' | 'float' | 'int';
  higherIsBetter: boolean;
  description: string;
}

/** A metric map as stored in JSON: finite numbers as numbers, the others as tokens ("NaN", …). */
export type EncodedMetricMap = Record<string, EncodedNumber>;

export const TrainingJobSchema = defineEntity({
  name: 'TrainingJob',
  tableName: 'training_job',
  properties: {
    jobId: p.string().length(128).primary(),
    task: p.string(),
    framework: p.string(),
    modelName: p.string(),
    status: p.enum(JOB_STATUSES),
    modelConfig: p.json<Record<string, unknown>>(),
    trainingConfig: p.json<Record<string, unknown>>(),
    params: p.json<Record<string, string>>(),
    customMetrics: p.json<StoredCustomMetric[]>(),
    startEpoch: p.integer(),
    epochsReported: p.integer(),
    primaryMetric: p.string(),
    bestEpoch: p.integer().nullable(),
    bestValue: p.double().$type<number>().runtimeType('number').nullable(),
    finalMetrics: p.json<EncodedMetricMap>(),
    finalPrimaryValue: p.double().$type<number>().runtimeType('number').nullable(),
    finalAccuracy: p.double().$type<number>().runtimeType('number').nullable(),
    errorMessage: p.text(),
    mlflowExperimentId: p.string(),
    mlflowRunId: p.string(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
    endedAt: p.datetime().nullable(),
  },
  indexes: [
    { name: 'training_job_created_idx', properties: ['createdAt', 'jobId'] },
    { name: 'training_job_status_created_idx', properties: ['status', 'createdAt', 'jobId'] },
    { name: 'training_job_task_created_idx', properties: ['task', 'createdAt', 'jobId'] },
  ],
});

/** A training job: one row per job id. */
export class TrainingJob extends TrainingJobSchema.class {}
TrainingJobSchema.setClass(TrainingJob);

export const TrainingMetricSchema = defineEntity({
  name: 'TrainingMetric',
  tableName: 'training_metric',
  properties: {
    id: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    epoch: p.integer(),
    // Denormalised copies of three common metrics for cheap queries; NULL when absent or not finite
    // (SQLite would turn a NaN REAL into NULL anyway). `extraMetrics` holds the truth.
    loss: p.double().$type<number>().runtimeType('number').nullable(),
    accuracy: p.double().$type<number>().runtimeType('number').nullable(),
    learningRate: p.double().$type<number>().runtimeType('number').nullable(),
    /** Every metric of the epoch (including the three above), encoded. */
    extraMetrics: p.json<EncodedMetricMap>(),
    /** Names of the metrics whose value is NaN or ±Infinity. */
    nonFinite: p.json<string[]>(),
    /** When the metrics were measured; NULL while the row only records BeginEpoch (not an epoch yet). */
    timestamp: p.datetime().nullable(),
    beganAt: p.datetime().nullable(),
  },
  uniques: [{ name: 'training_metric_job_epoch_unique', properties: ['job', 'epoch'] }],
});

/** The metrics of one epoch of one job. */
export class TrainingMetric extends TrainingMetricSchema.class {}
TrainingMetricSchema.setClass(TrainingMetric);

export const BatchMetricBlockSchema = defineEntity({
  name: 'BatchMetricBlock',
  tableName: 'batch_metric_block',
  properties: {
    id: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    epoch: p.integer(),
    firstStep: p.bigint(),
    lastStep: p.bigint(),
    /** Column names, JSON array of strings. */
    names: p.json<string[]>(),
    /** One little-endian int64 per row. */
    steps: p.blob(),
    /** Row-major little-endian float64 values; NaN/±Infinity kept bit for bit. */
    values: p.blob(),
  },
  uniques: [
    {
      name: 'batch_metric_block_key_unique',
      properties: ['job', 'epoch', 'firstStep', 'names'],
    },
  ],
});

/** A block of batch-level points: the same metric names for a run of steps. */
export class BatchMetricBlock extends BatchMetricBlockSchema.class {}
BatchMetricBlockSchema.setClass(BatchMetricBlock);

export const ArtifactSchema = defineEntity({
  name: 'Artifact',
  tableName: 'artifact',
  properties: {
    id: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    artifactPath: p.string(),
    sizeBytes: p.bigint('number'),
    sha256: p.string(),
    sourcePath: p.text(),
    storedPath: p.text(),
    loggedAt: p.datetime(),
  },
  uniques: [{ name: 'artifact_job_path_unique', properties: ['job', 'artifactPath'] }],
});

/** A file stored for a job. */
export class Artifact extends ArtifactSchema.class {}
ArtifactSchema.setClass(Artifact);

/** Every entity, for the ORM configuration. */
export const ENTITIES = [TrainingJob, TrainingMetric, BatchMetricBlock, Artifact];
