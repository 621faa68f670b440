// Entities of the store, defined with MikroORM 7's `defineEntity` (no decorators) plus a class each.
// They are dialect-neutral: nothing here names SQLite or PostgreSQL. Column types come from MikroORM's
// portable types (json, blob, double, datetime, bigint), and each dialect's migrations spell them out.
//
// JSON columns never hold NaN or ±Infinity: they hold the encoded form produced by `number-codec.ts`.
import { defineEntity, type EntityMetadata, type EntityProperty, p } from '@mikro-orm/core';
import type { EncodedNumber } from './number-codec.ts';
import type { ClientLossesRecord, TrainerRecord } from './types.ts';

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
    framework: p.string().length(256),
    modelName: p.string().length(256),
    status: p.enum(JOB_STATUSES),
    modelConfig: p.json<Record<string, unknown>>(),
    trainingConfig: p.json<Record<string, unknown>>(),
    params: p.json<Record<string, string>>(),
    /** The MLflow run name asked for by the last BeginTraining; empty: the default. */
    runName: p.text().default(''),
    /** Extra MLflow run tags sent by the last BeginTraining. */
    tags: p.json<Record<string, string>>().default('{}'),
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
    /** What the trainer's client reported it could not deliver (EndTraining); NULL when nothing. */
    clientLosses: p.json<ClientLossesRecord>().nullable(),
    mlflowExperimentId: p.string(),
    mlflowRunId: p.string(),
    /** The run's artifact root (`mlflow-artifacts:/…`); empty until the mirror knows it. */
    mlflowArtifactUri: p.text().default(''),
    /** Reported metric name → MLflow key, in first-seen order (the mirror's renames depend on it). */
    mlflowMetricKeys: p.json<Record<string, string>>().nullable(),
    createdAt: p.datetime(),
    updatedAt: p.datetime(),
    endedAt: p.datetime().nullable(),
    /** Why the job is not running: '' while it runs, else an EndCause (types.ts). */
    endCause: p.string().default(''),
    /** The sidecar's verdict on a lost job ("lost: …"); '' otherwise. */
    endReason: p.text().default(''),
    /** The trainer's last heartbeat or report (ms); NULL before any (jobs begun before leases). */
    lastSeenAtMs: p.bigint('number').nullable(),
    /** While running: when the lease runs out (ms); NULL otherwise. The sweeper's condition. */
    leaseExpiresAtMs: p.bigint('number').nullable(),
    /** The trainer process as sent by the last BeginTraining; NULL when none was sent. */
    trainer: p.json<TrainerRecord>().nullable(),
    /** The client session of the last BeginTraining ('' when none): the one that may revive the job. */
    trainerSession: p.text().default(''),
    /**
     * The trainer process of the last BeginTraining as `<boot id>/<pid>/<start time>` ('' when not
     * named in full): a verdict from process evidence holds only while the job still has this trainer.
     */
    trainerProcess: p.text().default(''),
  },
  indexes: [
    { name: 'training_job_created_idx', properties: ['createdAt', 'jobId'] },
    // The sweeper's scan: running jobs whose lease ran out.
    { name: 'training_job_lease_idx', properties: ['status', 'leaseExpiresAtMs'] },
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
    /** The block's smallest step. */
    firstStep: p.bigint(),
    /** The block's largest step. */
    lastStep: p.bigint(),
    /** Column names, JSON array of strings. */
    names: p.json<string[]>(),
    /** One little-endian int64 per row. */
    steps: p.blob(),
    /** Row-major little-endian float64 values; NaN/±Infinity kept bit for bit. */
    values: p.blob(),
    /**
     * When the block was first received (ms since epoch); kept when the block is resent, so a mirror
     * that resends it produces the very same points. NULL for blocks stored before it existed.
     */
    receivedAtMs: p.bigint('number').nullable(),
  },
  // No uniqueness by cut: a point is (job, name, step) and the store keeps each once (batch-points.ts).
  indexes: [
    // Pages in step order, of the whole job or of one epoch.
    { name: 'batch_metric_block_job_step_idx', properties: ['job', 'firstStep', 'id'] },
    { name: 'batch_metric_block_job_epoch_step_idx', properties: ['job', 'epoch', 'firstStep', 'id'] },
    // The blocks a write may overlap: last step at or after the write's first.
    { name: 'batch_metric_block_job_last_step_idx', properties: ['job', 'lastStep'] },
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
    artifactPath: p.string().length(512),
    sizeBytes: p.bigint('number'),
    sha256: p.string(),
    sourcePath: p.text(),
    storedPath: p.text(),
    loggedAt: p.datetime(),
  },
  uniques: [{ name: 'artifact_job_path_unique', properties: ['job', 'artifactPath'] }],
  // Listed in logging order (the id of the first logging), page by page.
  indexes: [{ name: 'artifact_job_id_idx', properties: ['job', 'id'] }],
});

/** A file stored for a job. */
export class Artifact extends ArtifactSchema.class {}
ArtifactSchema.setClass(Artifact);

export const OutboxItemSchema = defineEntity({
  name: 'OutboxItem',
  tableName: 'outbox_item',
  properties: {
    /** Orders a job's items (and is unique across jobs). */
    id: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    /** What the item mirrors (e.g. `epoch_metrics`); the consumer defines the kinds. */
    kind: p.string(),
    /** JSON payload given by the producer; NULL for a batch-block reference. */
    payload: p.json<unknown>().nullable(),
    /** A batch block (row id) whose points the item stands for: resolved when the item is read, never copied. */
    blockId: p.integer().nullable(),
    createdAtMs: p.bigint('number'),
    /** Failed attempts so far. */
    attempts: p.integer(),
    /** Not to be tried before this time (ms). */
    nextAttemptAtMs: p.bigint('number'),
    lastError: p.text().nullable(),
    /** Set when a failure retrying cannot fix stopped this job's queue; cleared by retryOutboxNow. */
    parkedError: p.text().nullable(),
  },
  indexes: [{ name: 'outbox_item_job_idx', properties: ['job', 'id'] }],
});

/**
 * A durable outbox entry: something to mirror elsewhere (MLflow), written in the same transaction as
 * the data it mirrors and deleted once delivered.
 */
export class OutboxItem extends OutboxItemSchema.class {}
OutboxItemSchema.setClass(OutboxItem);

export const OutboxClaimSchema = defineEntity({
  name: 'OutboxClaim',
  tableName: 'outbox_claim',
  properties: {
    /** The job whose outbox is claimed: one claim per job at most. */
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').primary().deleteRule('cascade').index(false),
    /** The instance id of the sidecar that drains the job's outbox. */
    claimedBy: p.string(),
    /** When the claim runs out unless renewed (ms); another sidecar may take the job over after it. */
    claimExpiresAtMs: p.bigint('number'),
  },
});

/**
 * Which sidecar drains a job's outbox, and until when: sidecars sharing a database drain each job's
 * outbox one at a time, in order, and take over the jobs of a sidecar that stopped renewing its claims.
 */
export class OutboxClaim extends OutboxClaimSchema.class {}
OutboxClaimSchema.setClass(OutboxClaim);

export const StoreChangeSchema = defineEntity({
  name: 'StoreChange',
  tableName: 'store_change',
  properties: {
    /**
     * The change sequence. SQLite: the rowid, increasing with every committed write (one writer at a
     * time). PostgreSQL: see {@link onPostgresqlMetadata}.
     */
    seq: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    /** What changed: see `ChangeKind` in types.ts. */
    kind: p.string(),
    /** The epoch number (kind `epoch`), block id (`batch`) or artifact id (`artifact`); else NULL. */
    ref: p.integer().nullable(),
  },
  indexes: [
    { name: 'store_change_job_seq_idx', properties: ['job', 'seq'] },
    // Compaction asks, row by row, whether a later row of the same job, kind and ref supersedes it.
    { name: 'store_change_key_idx', properties: ['job', 'kind', 'ref', 'seq'] },
  ],
});

/**
 * One committed change of a job, appended in the same transaction as the write it records: the watch
 * streams read them in sequence order, so any number of sidecars sharing the database see the same feed.
 */
export class StoreChange extends StoreChangeSchema.class {}
StoreChangeSchema.setClass(StoreChange);

/**
 * The entities as PostgreSQL stores them, where they differ from SQLite (MikroORM's `onMetadata`):
 * the feed's `seq` is a `bigint` given by `tc_feed_seq()`, ordered by the writing transaction's id
 * rather than taken from a sequence, so that writers need no common lock to keep readers from missing
 * a row (migration `feed_ordered_by_transaction`; readers stop at `tc_feed_horizon()`, hot-path.ts).
 */
export function onPostgresqlMetadata(meta: EntityMetadata): void {
  if (meta.className !== 'StoreChange') return;
  const seq = meta.properties.seq as EntityProperty;
  seq.autoincrement = false;
  seq.columnTypes = ['bigint'];
  seq.defaultRaw = 'tc_feed_seq()';
}

export const MetricSourceSchema = defineEntity({
  name: 'MetricSource',
  tableName: 'metric_source',
  properties: {
    id: p.integer().primary().autoincrement(),
    job: () => p.manyToOne(TrainingJob).fieldName('job_id').deleteRule('cascade').index(false),
    /** The metric's name in the mirror. */
    name: p.text(),
    /** The name the trainer reported. */
    reported: p.text(),
    /** The catalog's unit factor (0.01: reported in percent, stored as a fraction). */
    scale: p.double().$type<number>().runtimeType('number'),
  },
  // Each rename or unit change is recorded once per job, whichever sidecar saw it first.
  uniques: [{ name: 'metric_source_unique', properties: ['job', 'name', 'reported', 'scale'] }],
});

/**
 * A rename or unit change of one of a job's metrics that the mirror records in the run (tags): the
 * database, not a sidecar's memory, knows which were queued already; a re-mirror queues them all again.
 */
export class MetricSource extends MetricSourceSchema.class {}
MetricSourceSchema.setClass(MetricSource);

/** Every entity, for the ORM configuration. */
export const ENTITIES = [
  TrainingJob,
  TrainingMetric,
  BatchMetricBlock,
  Artifact,
  OutboxItem,
  OutboxClaim,
  StoreChange,
  MetricSource,
];
