// The store: maps the public records onto the entities. Every call forks the EntityManager and runs
// one short transaction. Hot paths (saveEpoch, beginEpoch, appendBatchBlocks, putArtifacts) bypass
// the unit of work: they write INSERT … ON CONFLICT DO UPDATE through the EntityManager's Kysely
// instance with bound parameters (see kysely-db.ts). Reads use em.find.
import {
  type EntityData,
  ForeignKeyConstraintViolationException,
  type MikroORM,
  type RequiredEntityData,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import { Artifact, BatchMetricBlock, TrainingJob, TrainingMetric } from './entities.ts';
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';
import {
  decodeMetricMap,
  encodeMetricMap,
  finiteOrNull,
  nonFiniteNames,
  packFloat64,
  packInt64,
  unpackFloat64,
  unpackInt64,
} from './number-codec.ts';
import { openSqliteOrm } from './sqlite-dialect.ts';
import { StoreError } from './store-error.ts';
import type {
  ArtifactRecord,
  BatchBlock,
  EndJobInput,
  EpochRecord,
  JobRecord,
  ListJobsPage,
  ListJobsQuery,
  NewJob,
  ReopenJobChanges,
  SaveEpochInput,
  Store,
  StoreOptions,
} from './types.ts';

/** Rows per multi-row INSERT: keeps every statement far below SQLite's 32766 bound parameters. */
const INSERT_CHUNK_ROWS = 500;

/** Opens the store: creates the database if needed and applies pending migrations. */
export async function openStore(options: StoreOptions): Promise<Store> {
  const dialect = options.dialect ?? 'sqlite';
  if (dialect !== 'sqlite') {
    throw new RangeError(`unsupported store dialect: ${String(dialect)}`);
  }
  const orm = await openSqliteOrm(options);
  return new OrmStore(orm);
}

/** Kysely queries surface the driver's own errors: convert them like MikroORM does its own. */
function convertError(em: EntityManager, error: unknown): unknown {
  if (error instanceof StoreError || !(error instanceof Error)) return error;
  return em.getPlatform().getExceptionConverter().convertException(error);
}

/** Turns a driver's constraint violation into a StoreError; anything else passes through. */
function mapDriverError(error: unknown, jobId: string): unknown {
  if (error instanceof ForeignKeyConstraintViolationException) {
    return new StoreError('not_found', `job ${JSON.stringify(jobId)} not found`, { cause: error });
  }
  if (error instanceof UniqueConstraintViolationException) {
    return new StoreError('conflict', `uniqueness violated for job ${JSON.stringify(jobId)}`, {
      cause: error,
    });
  }
  return error;
}

function notFound(jobId: string): StoreError {
  return new StoreError('not_found', `job ${JSON.stringify(jobId)} not found`);
}

/** A non-finite value of a nullable double column is NULL; the JSON entry `name` keeps the truth. */
function restoreFromJson(
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

function toJobRecord(job: TrainingJob): JobRecord {
  const finalMetrics = decodeMetricMap(job.finalMetrics);
  const record: JobRecord = {
    jobId: job.jobId,
    task: job.task,
    framework: job.framework,
    modelName: job.modelName,
    status: job.status,
    modelConfig: job.modelConfig,
    trainingConfig: job.trainingConfig,
    params: job.params,
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
  };
  if (job.bestEpoch != null) record.bestEpoch = job.bestEpoch;
  if (job.bestValue != null) record.bestValue = job.bestValue;
  const finalPrimaryValue = restoreFromJson(job.finalPrimaryValue ?? null, finalMetrics, job.primaryMetric);
  if (finalPrimaryValue !== undefined) record.finalPrimaryValue = finalPrimaryValue;
  const finalAccuracy = restoreFromJson(job.finalAccuracy ?? null, finalMetrics, 'accuracy');
  if (finalAccuracy !== undefined) record.finalAccuracy = finalAccuracy;
  if (job.endedAt != null) record.endedAt = job.endedAt;
  return record;
}

function toEpochRecord(jobId: string, row: TrainingMetric): EpochRecord {
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

function toBatchBlock(row: BatchMetricBlock): BatchBlock {
  return {
    epoch: row.epoch,
    names: row.names,
    steps: unpackInt64(row.steps),
    values: unpackFloat64(row.values),
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

class OrmStore implements Store {
  readonly #orm: MikroORM;

  constructor(orm: MikroORM) {
    this.#orm = orm;
  }

  /** A fresh EntityManager for one call. */
  #em(): EntityManager {
    return this.#orm.em.fork() as EntityManager;
  }

  async createOrGetJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }> {
    return this.#em().transactional(async (em) => {
      const existing = await em.findOne(TrainingJob, { jobId: job.jobId });
      if (existing) {
        return { job: toJobRecord(existing), created: false };
      }
      const now = new Date();
      const row: RequiredEntityData<TrainingJob> = {
        jobId: job.jobId,
        task: job.task,
        framework: job.framework,
        modelName: job.modelName,
        status: 'running',
        modelConfig: job.modelConfig,
        trainingConfig: job.trainingConfig,
        params: job.params,
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
        createdAt: now,
        updatedAt: now,
        endedAt: null,
      };
      await em.createQueryBuilder(TrainingJob).insert(row).execute('run');
      const created = await em.findOneOrFail(TrainingJob, { jobId: job.jobId });
      return { job: toJobRecord(created), created: true };
    });
  }

  async reopenJob(jobId: string, changes: ReopenJobChanges): Promise<JobRecord> {
    return this.#em().transactional(async (em) => {
      const data: EntityData<TrainingJob> = {
        startEpoch: changes.startEpoch,
        status: 'running',
        endedAt: null,
        updatedAt: new Date(),
      };
      if (changes.modelConfig !== undefined) data.modelConfig = changes.modelConfig;
      if (changes.trainingConfig !== undefined) data.trainingConfig = changes.trainingConfig;
      if (changes.params !== undefined) data.params = changes.params;
      if (changes.customMetrics !== undefined) data.customMetrics = changes.customMetrics;
      const updated = await em.nativeUpdate(TrainingJob, { jobId }, data);
      if (updated === 0) throw notFound(jobId);
      return toJobRecord(await em.findOneOrFail(TrainingJob, { jobId }));
    });
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const job = await this.#em().findOne(TrainingJob, { jobId });
    return job ? toJobRecord(job) : undefined;
  }

  async listJobs(query: ListJobsQuery): Promise<ListJobsPage> {
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
    const rows = await this.#em().find(TrainingJob, where, {
      orderBy: [{ createdAt: 'desc' }, { jobId: 'desc' }],
      limit: limit + 1,
    });
    const jobs = rows.slice(0, limit).map(toJobRecord);
    const last = jobs[jobs.length - 1];
    return rows.length > limit && last ? { jobs, nextCursor: encodeCursor(last) } : { jobs };
  }

  async beginEpoch(jobId: string, epoch: number, at: Date): Promise<void> {
    const em = this.#em();
    try {
      await em
        .getKysely<StoreDB>(KYSELY_OPTIONS)
        .insertInto('TrainingMetric')
        .values({
          job: jobId,
          epoch,
          loss: null,
          accuracy: null,
          learningRate: null,
          extraMetrics: {},
          nonFinite: [],
          timestamp: null,
          beganAt: at,
        })
        .onConflict((oc) =>
          oc.columns(['job', 'epoch']).doUpdateSet((eb) => ({ beganAt: eb.ref('excluded.beganAt') })),
        )
        .execute();
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  async saveEpoch(input: SaveEpochInput): Promise<void> {
    const { jobId, epoch } = input;
    const em = this.#em();
    try {
      await em
        .getKysely<StoreDB>(KYSELY_OPTIONS)
        .transaction()
        .execute(async (trx) => {
          // One indexed lookup tells whether this epoch is new; counting the job's epochs instead
          // would cost O(epochs) on every report.
          const previous = await trx
            .selectFrom('TrainingMetric')
            .select('timestamp')
            .where('job', '=', jobId)
            .where('epoch', '=', epoch)
            .executeTakeFirst();
          const isNew = previous === undefined || previous.timestamp === null;
          await trx
            .insertInto('TrainingMetric')
            .values({
              job: jobId,
              epoch,
              loss: finiteOrNull(input.columns.loss),
              accuracy: finiteOrNull(input.columns.accuracy),
              learningRate: finiteOrNull(input.columns.learningRate),
              extraMetrics: encodeMetricMap(input.metrics),
              nonFinite: nonFiniteNames(input.metrics),
              timestamp: input.timestamp,
            })
            .onConflict((oc) =>
              oc.columns(['job', 'epoch']).doUpdateSet((eb) => ({
                loss: eb.ref('excluded.loss'),
                accuracy: eb.ref('excluded.accuracy'),
                learningRate: eb.ref('excluded.learningRate'),
                extraMetrics: eb.ref('excluded.extraMetrics'),
                nonFinite: eb.ref('excluded.nonFinite'),
                timestamp: eb.ref('excluded.timestamp'),
              })),
            )
            .execute();
          const result = await trx
            .updateTable('TrainingJob')
            .set((eb) => ({
              epochsReported: isNew ? eb('epochsReported', '+', 1) : eb.ref('epochsReported'),
              bestEpoch: input.best?.epoch ?? null,
              bestValue: input.best?.value ?? null,
              updatedAt: new Date(),
            }))
            .where('jobId', '=', jobId)
            .executeTakeFirst();
          if (result.numUpdatedRows === 0n) throw notFound(jobId);
        });
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  async listEpochs(jobId: string): Promise<EpochRecord[]> {
    const rows = await this.#em().find(
      TrainingMetric,
      { job: jobId, timestamp: { $ne: null } },
      { orderBy: { epoch: 'asc' }, disableIdentityMap: true },
    );
    return rows.map((row) => toEpochRecord(jobId, row));
  }

  async appendBatchBlocks(jobId: string, blocks: readonly BatchBlock[]): Promise<void> {
    for (const block of blocks) checkBlock(block);
    const rows = blocks
      .filter((block) => block.steps.length > 0)
      .map((block) => ({
        job: jobId,
        epoch: block.epoch,
        firstStep: block.steps[0]!,
        lastStep: block.steps[block.steps.length - 1]!,
        names: block.names,
        steps: packInt64(block.steps),
        values: packFloat64(block.values),
      }));
    if (rows.length === 0) return;
    const em = this.#em();
    try {
      await em
        .getKysely<StoreDB>(KYSELY_OPTIONS)
        .transaction()
        .execute(async (trx) => {
          for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
            await trx
              .insertInto('BatchMetricBlock')
              .values(rows.slice(i, i + INSERT_CHUNK_ROWS))
              .onConflict((oc) =>
                oc.columns(['job', 'epoch', 'firstStep', 'names']).doUpdateSet((eb) => ({
                  lastStep: eb.ref('excluded.lastStep'),
                  steps: eb.ref('excluded.steps'),
                  values: eb.ref('excluded.values'),
                })),
              )
              .execute();
          }
        });
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  async listBatchBlocks(jobId: string, epoch?: number): Promise<BatchBlock[]> {
    const where = epoch === undefined ? { job: jobId } : { job: jobId, epoch };
    const rows = await this.#em().find(BatchMetricBlock, where, {
      orderBy: [{ firstStep: 'asc' }, { epoch: 'asc' }, { id: 'asc' }],
      disableIdentityMap: true,
    });
    return rows.map(toBatchBlock);
  }

  async endJob(input: EndJobInput): Promise<JobRecord> {
    const { jobId } = input;
    return this.#em().transactional(async (em) => {
      const updated = await em.nativeUpdate(
        TrainingJob,
        { jobId },
        {
          status: input.status,
          finalMetrics: encodeMetricMap(input.finalMetrics),
          finalPrimaryValue: finiteOrNull(input.finalPrimaryValue),
          finalAccuracy: finiteOrNull(input.finalAccuracy),
          errorMessage: input.errorMessage,
          endedAt: input.endedAt,
          updatedAt: new Date(),
        },
      );
      if (updated === 0) throw notFound(jobId);
      return toJobRecord(await em.findOneOrFail(TrainingJob, { jobId }));
    });
  }

  async putArtifacts(jobId: string, artifacts: readonly ArtifactRecord[]): Promise<void> {
    if (artifacts.length === 0) return;
    const rows = artifacts.map((artifact) => ({
      job: jobId,
      artifactPath: artifact.artifactPath,
      sizeBytes: artifact.sizeBytes,
      sha256: artifact.sha256,
      sourcePath: artifact.sourcePath,
      storedPath: artifact.storedPath,
      loggedAt: artifact.loggedAt,
    }));
    const em = this.#em();
    try {
      await em
        .getKysely<StoreDB>(KYSELY_OPTIONS)
        .transaction()
        .execute(async (trx) => {
          for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
            await trx
              .insertInto('Artifact')
              .values(rows.slice(i, i + INSERT_CHUNK_ROWS))
              .onConflict((oc) =>
                oc.columns(['job', 'artifactPath']).doUpdateSet((eb) => ({
                  sizeBytes: eb.ref('excluded.sizeBytes'),
                  sha256: eb.ref('excluded.sha256'),
                  sourcePath: eb.ref('excluded.sourcePath'),
                  storedPath: eb.ref('excluded.storedPath'),
                  loggedAt: eb.ref('excluded.loggedAt'),
                })),
              )
              .execute();
          }
        });
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  async listArtifacts(jobId: string): Promise<ArtifactRecord[]> {
    const rows = await this.#em().find(
      Artifact,
      { job: jobId },
      { orderBy: { artifactPath: 'asc' }, disableIdentityMap: true },
    );
    return rows.map((row) => ({
      artifactPath: row.artifactPath,
      sizeBytes: row.sizeBytes,
      sha256: row.sha256,
      sourcePath: row.sourcePath,
      storedPath: row.storedPath,
      loggedAt: row.loggedAt,
    }));
  }

  async setMlflowIds(jobId: string, experimentId: string, runId: string): Promise<void> {
    const updated = await this.#em().nativeUpdate(
      TrainingJob,
      { jobId },
      { mlflowExperimentId: experimentId, mlflowRunId: runId, updatedAt: new Date() },
    );
    if (updated === 0) throw notFound(jobId);
  }

  async close(): Promise<void> {
    await this.#orm.close(true);
  }
}
