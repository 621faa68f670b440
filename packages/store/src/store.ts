// The store: maps the public records onto the entities, on either dialect. Every call runs one short
// transaction of Kysely queries with bound parameters: through MikroORM's Kysely plugin (entity and
// property names, values converted by the entities' types; see kysely-db.ts), or, on the hot paths
// (an epoch report or begin, a batch append, the change feed), on table and column names without it
// (hot-path.ts).
// The rules that must hold across sidecars sharing a database (a job that has ended takes no more
// reports; the best epoch) are decided inside those transactions, from the rows they lock.
import {
  ForeignKeyConstraintViolationException,
  type MikroORM,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import { planBatchWrite, stepBounds } from './batch-points.ts';
import { CommitSignal } from './change-feed.ts';
import { Artifact, BatchMetricBlock, TrainingJob, TrainingMetric } from './entities.ts';
import {
  BLOCKS_PER_STATEMENT,
  type BlockInsert,
  compactChanges,
  type EpochRow,
  HotPath,
  type TableKysely,
  type TableTransaction,
} from './hot-path.ts';
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';
import {
  decodeJsonTree,
  decodeMetricMap,
  decodeNumber,
  encodeJsonTree,
  encodeMetricMap,
  finiteOrNull,
  nonFiniteNames,
  packFloat64,
  packInt64,
  unpackFloat64,
  unpackInt64,
  userKeyed,
  viewFloat64,
  viewInt64,
} from './number-codec.ts';
import {
  blockQuery,
  type ClaimLocking,
  claimableJobsQuery,
  claimJobsQuery,
  dueJobsQuery,
  mirrorStateQuery,
  nextDueForOwnerQuery,
  nextDueQuery,
  peekQuery,
  releaseIdleClaimsQuery,
  renewClaimsQuery,
  statusCountsQuery,
} from './outbox-queries.ts';
import { mirrorStateOf, outboxLimit, outboxStatuses, peekItems } from './outbox-rows.ts';
import { StoreError } from './store-error.ts';
import type {
  ArtifactPage,
  ArtifactRecord,
  BatchAppendResult,
  BatchBlock,
  BatchBlockPage,
  BestEpoch,
  ChangeKind,
  ChangeRecord,
  ChangesQuery,
  EndCause,
  EndJobInput,
  EpochPage,
  EpochRecord,
  ExpiredLease,
  JobRecord,
  JobSnapshot,
  JobStatus,
  LeaseRenewal,
  LeaseVerdict,
  ListedArtifact,
  ListedBatchBlock,
  ListJobsPage,
  ListJobsQuery,
  LostJobInput,
  MetricSourcesWrite,
  MirrorState,
  NewJob,
  OperationalCounts,
  OutboxClaimTerms,
  OutboxItemInput,
  OutboxStatus,
  OutboxWrite,
  RenewLeaseOptions,
  ReopenJobChanges,
  SavedEpoch,
  SaveEpochInput,
  Store,
  StoreDialect,
  StoredArtifact,
  StoredBatchBlock,
  StoredOutboxItem,
  StoreOptions,
  TrainerRecord,
} from './types.ts';
import { LOST_CAUSES } from './types.ts';

/** Picks of {@link Store.claimOutboxJobs} when other stores win jobs it picked. */
const CLAIM_ROUNDS = 3;

/**
 * Most points of a batch append written in one call on PostgreSQL (see HotPath.writeBatchAppend): the
 * call's arrays travel as text (bytea in hex, twice the bytes), which costs nothing next to six round
 * trips for a short stream but more than they do for a long one (those take the transaction, whose
 * blobs are bound as binary parameters).
 */
const ONE_CALL_MAX_POINTS = 16_384;

/** Rows per multi-row INSERT: keeps every statement far below SQLite's 32766 bound parameters. */
const INSERT_CHUNK_ROWS = 500;

/** The dialect of a `dbPath`: a `postgres://` or `postgresql://` URL, else an SQLite file. */
export function dialectOf(dbPath: string): StoreDialect {
  return /^postgres(ql)?:\/\//i.test(dbPath) ? 'postgresql' : 'sqlite';
}

/**
 * Opens the store: creates the database if needed and applies pending migrations. Each dialect's
 * module is loaded only when used, so an SQLite sidecar never loads the PostgreSQL driver.
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  const { orm, dialect } = await openDialectOrm(options);
  return new OrmStore(orm, dialect);
}

/** The MikroORM instance of `options`' dialect, its migrations applied (openStore's, copyDatabase's). */
export async function openDialectOrm(
  options: StoreOptions,
): Promise<{ orm: MikroORM; dialect: StoreDialect }> {
  const dialect = options.dialect ?? dialectOf(options.dbPath);
  const orm =
    dialect === 'postgresql'
      ? await (await import('./postgresql-dialect.ts')).openPostgresqlOrm({
          url: options.dbPath,
          ...(options.poolSize !== undefined && { poolSize: options.poolSize }),
          ...(options.debug !== undefined && { debug: options.debug }),
        })
      : await (await import('./sqlite-dialect.ts')).openSqliteOrm(options);
  return { orm, dialect };
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

/** A job's status, read inside a write's transaction (see saveEpoch). */

/** A report for a job that has ended: the sidecar answers FAILED_PRECONDITION. */
function jobEnded(jobId: string, status: string): StoreError {
  return new StoreError(
    'ended',
    `job ${JSON.stringify(jobId)} has ended (${status}); reports after the end are refused — ` +
      'call BeginTraining again to resume a failed or cancelled job, or use a new job id',
  );
}

/** An end for a job that is no longer running (another end, or a verdict, came first). */
function alreadyEnded(jobId: string, status: string): StoreError {
  return new StoreError('ended', `job ${JSON.stringify(jobId)} already ended (${status}); a job ends once`);
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
function trainerProcessKey(
  trainer: Pick<TrainerRecord, 'pid' | 'startTimeTicks' | 'bootId'> | null | undefined,
): string {
  if (!trainer?.bootId || !trainer.pid || trainer.startTimeTicks === '0') return '';
  return `${trainer.bootId}/${trainer.pid}/${trainer.startTimeTicks}`;
}

/** The trainer columns of a BeginTraining (null: none sent). */
function trainerColumns(trainer: TrainerRecord | null) {
  return {
    trainer,
    trainerSession: trainer?.sessionId ?? '',
    trainerProcess: trainerProcessKey(trainer),
  };
}

/** A fresh lease from `nowMs`. */
function leaseColumns(nowMs: number, leaseMs: number) {
  return { lastSeenAtMs: nowMs, leaseExpiresAtMs: nowMs + leaseMs };
}

/** A config as stored (see `encodeJsonTree`) → as given. */
function decodeConfig(stored: unknown): Record<string, unknown> {
  const tree = decodeJsonTree(stored ?? {});
  return tree !== null && typeof tree === 'object' && !Array.isArray(tree) ? tree : userKeyed();
}

/** A config → its stored form, NaN and ±Infinity kept (see `encodeJsonTree`). */
function encodeConfig(config: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return encodeJsonTree(config) as Record<string, unknown>;
}

function toArtifactRecord(row: Artifact): ArtifactRecord {
  return {
    artifactPath: row.artifactPath,
    sizeBytes: row.sizeBytes,
    sha256: row.sha256,
    sourcePath: row.sourcePath,
    storedPath: row.storedPath,
    loggedAt: row.loggedAt,
  };
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

/** Two encoded metric maps hold the same names and values (in any order). */
function sameMetrics(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  return keys.every((k) => Object.hasOwn(b, k) && Object.is(a[k], b[k]));
}

/**
 * Records the sources not recorded yet and queues `write.item` of them, inside `trx`. The unique index
 * decides (INSERT … ON CONFLICT DO NOTHING RETURNING): of two sidecars seeing a new rename at once, one
 * inserts it and queues it, the other's insert waits for that commit and returns nothing.
 */
async function recordMetricSources(
  hot: HotPath,
  trx: TableTransaction,
  jobId: string,
  write: MetricSourcesWrite,
): Promise<void> {
  if (write.sources.length === 0) return;
  const added = await hot.recordMetricSources(trx, jobId, write.sources);
  if (added.length > 0) await hot.insertOutbox(trx, jobId, [write.item(added)], Date.now());
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

/** Jobs whose last written row version a store keeps for its next epoch report (see #epochJobs). */
const EPOCH_JOBS_KEPT = 4096;

/** What an epoch report is decided from without a transaction: the job row as last written. */
interface EpochJobState {
  version: string;
  best: BestEpoch | null;
  primaryMetric: string;
}

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

/** Outbox rows for `items`, due at once. */
function outboxRows(jobId: string, items: readonly OutboxItemInput[], nowMs: number) {
  return items.map((item) => ({
    job: jobId,
    kind: item.kind,
    payload: item.payload ?? null,
    blockId: null,
    createdAtMs: nowMs,
    attempts: 0,
    nextAttemptAtMs: nowMs,
    lastError: null,
    parkedError: null,
  }));
}

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

/** A Kysely transaction on the store's tables (MikroORM's Kysely, values bound). */
type StoreTransaction = Parameters<Parameters<ReturnType<StoreKysely['transaction']>['execute']>[0]>[0];
type StoreKysely = ReturnType<typeof storeKysely>;
function storeKysely(em: EntityManager) {
  return em.getKysely<StoreDB>(KYSELY_OPTIONS);
}

class OrmStore implements Store {
  readonly #orm: MikroORM;
  readonly #hot: HotPath;
  /** Kysely on table and column names, without MikroORM's plugin (the hot paths). */
  readonly #tables: TableKysely;
  readonly #committed = new CommitSignal();
  /** Feed entries of open transactions, written last, just before the commit (see #transaction). */
  readonly #pendingChanges = new WeakMap<
    StoreTransaction,
    Array<[string, ChangeKind, readonly (number | null)[]]>
  >();
  /**
   * Whether the database locks rows (`SELECT … FOR SHARE / FOR UPDATE`). SQLite has no row locks and
   * needs none: every transaction is BEGIN IMMEDIATE and holds the database's write lock throughout.
   */
  readonly #rowLocks: boolean;
  /**
   * PostgreSQL: the job rows this store's epoch reports wrote last (version, best epoch, primary
   * metric), from which the next report of the job is decided without a transaction. Only a guess
   * to try: the database refuses the write once the row has another version (see #saveEpochFrom).
   */
  readonly #epochJobs = new Map<string, EpochJobState>();

  constructor(orm: MikroORM, dialect: StoreDialect) {
    this.#orm = orm;
    this.#hot = new HotPath(dialect, orm);
    this.#tables = (orm.em.fork() as EntityManager).getKysely() as unknown as TableKysely;
    this.#rowLocks = dialect === 'postgresql';
  }

  /** How {@link claimOutboxJobs} picks jobs: past the rows other claimers lock, where rows lock. */
  get #claimLocking(): ClaimLocking {
    return this.#rowLocks ? 'skip-locked' : 'none';
  }

  /** A fresh EntityManager for one call. */
  #em(): EntityManager {
    return this.#orm.em.fork() as EntityManager;
  }

  /**
   * Runs `write` in one Kysely transaction, whose values are bound parameters (MikroORM's own
   * `nativeUpdate`/query builder inline them into the SQL text, where a NUL in an error message ends
   * the statement); driver errors become StoreErrors as in every other write.
   */
  async #transaction<T>(jobId: string, write: (trx: StoreTransaction) => Promise<T>): Promise<T> {
    const em = this.#em();
    try {
      let appended = false;
      const result = await storeKysely(em)
        .transaction()
        .execute(async (trx) => {
          const result = await write(trx);
          const pending = this.#pendingChanges.get(trx);
          if (pending) {
            appended = true;
            const tables = trx.withoutPlugins() as unknown as TableTransaction;
            for (const [job, kind, refs] of pending) await this.#hot.appendChanges(tables, job, kind, refs);
          }
          return result;
        });
      if (appended) this.#committed.fire(jobId || undefined);
      return result;
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  /** A transaction of the hot paths (table names, no plugin); driver errors become StoreErrors. */
  async #tableTransaction<T>(jobId: string, write: (trx: TableTransaction) => Promise<T>): Promise<T> {
    try {
      return await this.#tables.transaction().execute(write);
    } catch (error) {
      throw mapDriverError(convertError(this.#orm.em as EntityManager, error), jobId);
    }
  }

  /**
   * Records feed entries of `trx` (see change-feed.ts). They are written when `write` is done, just
   * before the commit: on PostgreSQL the feed's order lock is then held for the commit alone.
   */
  #appendChanges(
    trx: StoreTransaction,
    jobId: string,
    kind: ChangeKind,
    refs: readonly (number | null)[] = [null],
  ): void {
    if (refs.length === 0) return;
    const pending = this.#pendingChanges.get(trx);
    if (pending) pending.push([jobId, kind, refs]);
    else this.#pendingChanges.set(trx, [[jobId, kind, refs]]);
  }

  /**
   * The job's row as it is inside `trx`, locked until `trx` ends: `share` for writes that add to a
   * running job (batch blocks, artifacts: they may run side by side, but an end or resume waits for
   * them, and they for it), `update` for writes that change the job's state (end, resume, re-mirror).
   * This read, not any sidecar's memory, decides whether the job runs: a report racing the job's end
   * on another sidecar commits before the end or is refused. NOT_FOUND for an unknown job.
   */
  async #lockJob(trx: StoreTransaction, jobId: string, mode: 'share' | 'update') {
    const row = await trx
      .selectFrom('TrainingJob')
      .select(['status', 'endCause', 'bestValue', 'primaryMetric', 'startEpoch', 'clientLosses'])
      .where('jobId', '=', jobId)
      .$if(this.#rowLocks, (q) => (mode === 'share' ? q.forShare() : q.forUpdate()))
      .executeTakeFirst();
    if (!row) throw notFound(jobId);
    return row;
  }

  /** A report's check, on the table view (every batch stream runs it): `ended` unless the job runs. */
  async #lockRunningJob(trx: StoreTransaction, jobId: string): Promise<void> {
    const status = await this.#hot.lockJobShared(trx.withoutPlugins() as unknown as TableTransaction, jobId);
    if (status === undefined) throw notFound(jobId);
    if (status !== 'running') throw jobEnded(jobId, status);
  }

  async #readJob(jobId: string): Promise<JobRecord> {
    const row = await this.#hot.jobById(this.#tables, jobId);
    if (!row) throw notFound(jobId);
    return toJobRecord(row as unknown as TrainingJob);
  }

  async createOrGetJob(
    job: NewJob,
    options: OutboxWrite = {},
  ): Promise<{ job: JobRecord; created: boolean }> {
    const created = await this.#transaction(job.jobId, async (trx) => {
      const now = new Date();
      // ON CONFLICT DO NOTHING: two sidecars creating the same job at once both answer; one creates it.
      const inserted = await trx
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
        .onConflict((oc) => oc.column('jobId').doNothing())
        .executeTakeFirst();
      if (!inserted.numInsertedOrUpdatedRows) return false;
      this.#appendChanges(trx, job.jobId, 'job');
      if (options.outbox?.length)
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(job.jobId, options.outbox, Date.now()))
          .execute();
      return true;
    });
    return { job: await this.#readJob(job.jobId), created };
  }

  async reopenJob(jobId: string, changes: ReopenJobChanges): Promise<JobRecord> {
    await this.#transaction(jobId, async (trx) => {
      const job = await this.#lockJob(trx, jobId, 'update');
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
      this.#appendChanges(trx, jobId, 'job');
      if (changes.outbox?.length)
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(jobId, changes.outbox, Date.now()))
          .execute();
    });
    return this.#readJob(jobId);
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    const row = await this.#hot.jobById(this.#tables, jobId);
    return row ? toJobRecord(row as unknown as TrainingJob) : undefined;
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
    const cursors = jobs.map(encodeCursor);
    return rows.length > limit && last
      ? { jobs, cursors, nextCursor: encodeCursor(last) }
      : { jobs, cursors };
  }

  async beginEpoch(jobId: string, epoch: number, at: Date): Promise<void> {
    const hot = this.#hot;
    const status = this.#rowLocks
      ? // One statement, autocommitted: the job row's share lock and the begin (see writeEpochBegin).
        await hot.writeEpochBegin(this.#tables, jobId, epoch, at).catch((error: unknown) => {
          throw mapDriverError(convertError(this.#orm.em as EntityManager, error), jobId);
        })
      : await this.#tableTransaction(jobId, async (trx) => {
          const status = await hot.lockJobShared(trx, jobId);
          if (status === 'running') await hot.upsertEpochBegin(trx, jobId, epoch, at);
          return status;
        });
    if (status === undefined) throw notFound(jobId);
    if (status !== 'running') throw jobEnded(jobId, status);
  }

  async saveEpoch(input: SaveEpochInput): Promise<SavedEpoch> {
    const { jobId } = input;
    const report = epochReport(input);
    // PostgreSQL, a job this store reported before: one autocommitted statement decided from the job
    // row's version then, written only while it is still the row's version (see writeEpochReport).
    // Renames and unit changes have their own statement (recordMetricSources): the locked path.
    const known = this.#rowLocks && !input.metricSources?.sources.length && this.#epochJobs.get(jobId);
    if (known) {
      const saved = await this.#saveEpochFrom(known, input, report);
      if (saved) {
        this.#committed.fire(jobId);
        return saved;
      }
      this.#epochJobs.delete(jobId);
    }
    const saved = await this.#tableTransaction(jobId, (trx) => this.#saveEpochLocked(trx, input, report));
    this.#committed.fire(jobId);
    return saved;
  }

  /**
   * An epoch report decided from `known` (the job row as this store last wrote it) without a
   * transaction: the best epoch is decided first, from `known`'s incumbent and, when the rule asks,
   * the other epochs read now; writeEpochReport writes it only if no write of the job (a report, an
   * end, a resume: each makes a new row version) came in between. Undefined: one did, decide again.
   */
  async #saveEpochFrom(
    known: EpochJobState,
    input: SaveEpochInput,
    report: ReturnType<typeof epochReport>,
  ): Promise<SavedEpoch | undefined> {
    const { jobId, epoch } = input;
    const hot = this.#hot;
    try {
      const rule = input.best;
      const best =
        typeof rule === 'function'
          ? await rule(known.best, async () =>
              primaryValues(await hot.otherEpochMetrics(this.#tables, jobId, epoch), known.primaryMetric),
            )
          : rule;
      const written = await hot.writeEpochReport(this.#tables, {
        row: report.row,
        version: known.version,
        best,
        updatedAt: new Date(),
        outbox: report.outbox,
        nowMs: Date.now(),
      });
      if (!written) return undefined;
      this.#rememberEpochJob(jobId, { version: written.version, best, primaryMetric: known.primaryMetric });
      return { best, epochsReported: written.epochsReported, isNew: written.isNew };
    } catch (error) {
      throw mapDriverError(convertError(this.#orm.em as EntityManager, error), jobId);
    }
  }

  /**
   * An epoch report under the job row's lock (or, on SQLite, the database's). An EndTraining on any
   * sidecar either committed before (refused here) or commits after this epoch, and two reports of
   * the job never both decide the best epoch from the same incumbent. The same statement's indexed
   * lookup of the epoch row tells whether this epoch is new; counting the job's epochs instead would
   * cost O(epochs) on every report.
   */
  async #saveEpochLocked(
    trx: TableTransaction,
    input: SaveEpochInput,
    report: ReturnType<typeof epochReport>,
  ): Promise<SavedEpoch> {
    const { jobId, epoch } = input;
    const hot = this.#hot;
    const locked = await hot.lockJobForEpoch(trx, jobId, epoch);
    if (!locked) throw notFound(jobId);
    const { job, previous } = locked;
    if (job.status !== 'running') throw jobEnded(jobId, job.status);
    const incumbent =
      job.bestEpoch === null || job.bestValue === null
        ? null
        : { epoch: job.bestEpoch, value: job.bestValue };
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
      // PostgreSQL: the writes in one call (tc_report_epoch), from the version locked (it cannot have changed).
      const written = await hot.writeEpochReport(trx, {
        row: report.row,
        version: job.version,
        best,
        updatedAt: new Date(),
        outbox: report.outbox,
        nowMs: Date.now(),
      });
      if (!written) throw new Error(`epoch report of job ${JSON.stringify(jobId)}: the locked row changed`);
      this.#rememberEpochJob(jobId, { version: written.version, best, primaryMetric: job.primaryMetric });
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
   * Remembers the job row's version this store wrote (see #epochJobs); the oldest entry goes when
   * there are too many. If the transaction that wrote it does not commit, the version never becomes
   * the row's and the next report just misses.
   */
  #rememberEpochJob(jobId: string, state: EpochJobState): void {
    this.#epochJobs.delete(jobId);
    this.#epochJobs.set(jobId, state);
    if (this.#epochJobs.size > EPOCH_JOBS_KEPT) {
      this.#epochJobs.delete(this.#epochJobs.keys().next().value as string);
    }
  }

  async listEpochs(jobId: string, page: EpochPage = {}): Promise<EpochRecord[]> {
    const rows = await this.#em().find(
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

  async appendBatchBlocks(
    jobId: string,
    blocks: readonly BatchBlock[],
    options: {
      outboxKind?: string;
      metricSources?: MetricSourcesWrite;
      receivedAtMs?: number;
    } = {},
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
    const hot = this.#hot;
    // PostgreSQL, a short write that meets no stored block (the usual stream): one autocommitted call
    // (see writeBatchAppend). A write that meets stored blocks, records new metric sources or carries
    // many points takes the transaction below.
    if (
      this.#rowLocks &&
      !options.metricSources?.sources.length &&
      incoming.reduce((points, block) => points + block.values.length, 0) <= ONE_CALL_MAX_POINTS
    ) {
      const plan = planBatchWrite(incoming, []);
      if (plan.inserts.length <= BLOCKS_PER_STATEMENT) {
        const written = await hot
          .writeBatchAppend(this.#tables, {
            jobId,
            firstStep: lo,
            lastStep: hi,
            blocks: plan.inserts.map(blockRow),
            receivedAtMs,
            outboxKind,
            nowMs: Date.now(),
          })
          .catch((error: unknown) => {
            throw mapDriverError(convertError(this.#orm.em as EntityManager, error), jobId);
          });
        if (!written) throw notFound(jobId);
        if (written.status !== 'running') throw jobEnded(jobId, written.status);
        if (written.ids.length > 0) {
          this.#committed.fire(jobId);
          return { unchangedPoints: plan.unchangedPoints, replacedPoints: plan.replacedPoints };
        }
      }
    }
    const changed = await this.#tableTransaction(jobId, async (trx) => {
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
    if (changed > 0) this.#committed.fire(jobId);
    return result;
  }

  async listBatchBlocks(
    jobId: string,
    epoch?: number,
    page: BatchBlockPage = {},
  ): Promise<ListedBatchBlock[]> {
    const after = page.after;
    const rows = await this.#em().find(
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

  async endJob(input: EndJobInput): Promise<JobRecord> {
    const { jobId } = input;
    await this.#transaction(jobId, async (trx) => {
      // Conditional on the job running, read under the row's lock: of two ends racing on two
      // sidecars, one ends the job and the other meets `ended` (the caller decides what to answer).
      const job = await this.#lockJob(trx, jobId, 'update');
      if (job.status !== 'running') throw alreadyEnded(jobId, job.status);
      const best = job.bestValue ?? undefined;
      const outbox =
        typeof input.outbox === 'function'
          ? input.outbox({ startEpoch: job.startEpoch, lastEpoch: await this.#lastEpoch(trx, jobId) })
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
      this.#appendChanges(trx, jobId, 'job');
      if (outbox?.length)
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(jobId, outbox, Date.now()))
          .execute();
    });
    return this.#readJob(jobId);
  }

  /** The job's highest reported epoch inside `trx` (undefined: none reported). */
  async #lastEpoch(trx: StoreTransaction, jobId: string): Promise<number | undefined> {
    const row = await trx
      .selectFrom('TrainingMetric')
      .select((eb) => eb.fn.max('epoch').as('last'))
      .where('job', '=', jobId)
      .where('timestamp', 'is not', null)
      .executeTakeFirst();
    return row?.last == null ? undefined : Number(row.last);
  }

  async renewLease(jobId: string, options: RenewLeaseOptions): Promise<LeaseRenewal> {
    const { nowMs, leaseMs } = options;
    const sessionId = options.sessionId ?? '';
    const outcome = await this.#transaction(jobId, async (trx) => {
      // The common case, one statement: a running job's lease moves on.
      const renewed = await trx
        .updateTable('TrainingJob')
        .set(leaseColumns(nowMs, leaseMs))
        .where('jobId', '=', jobId)
        .where('status', '=', 'running')
        .executeTakeFirst();
      if (renewed.numUpdatedRows > 0n) return { renewed: true, revived: false };
      if (sessionId !== '') {
        // A lost job whose own trainer session shows a sign of life: the verdict was wrong.
        const lost = options.revive
          ? await trx
              .selectFrom('TrainingJob')
              .select('endReason')
              .where('jobId', '=', jobId)
              .executeTakeFirst()
          : undefined;
        const revived = await trx
          .updateTable('TrainingJob')
          .set({
            status: 'running',
            endedAt: null,
            endCause: '',
            endReason: '',
            updatedAt: new Date(nowMs),
            ...leaseColumns(nowMs, leaseMs),
          })
          .where('jobId', '=', jobId)
          .where('status', '=', 'failed')
          .where('endCause', 'in', [...LOST_CAUSES])
          .where('trainerSession', '=', sessionId)
          .executeTakeFirst();
        if (revived.numUpdatedRows > 0n) {
          this.#appendChanges(trx, jobId, 'job');
          const outbox = options.revive?.(lost?.endReason ?? '');
          if (outbox?.length)
            await trx
              .insertInto('OutboxItem')
              .values(outboxRows(jobId, outbox, nowMs))
              .execute();
          return { renewed: true, revived: true };
        }
      }
      return { renewed: false, revived: false };
    });
    const job = await this.getJob(jobId);
    if (!job) throw notFound(jobId);
    return { job, ...outcome };
  }

  async expireLeases(
    nowMs: number,
    limit: number,
    verdict: (job: ExpiredLease) => LeaseVerdict | Promise<LeaseVerdict>,
  ): Promise<JobRecord[]> {
    const candidates = await storeKysely(this.#em())
      .selectFrom('TrainingJob')
      .select(['jobId', 'lastSeenAtMs', 'leaseExpiresAtMs'])
      .where('status', '=', 'running')
      .where('leaseExpiresAtMs', '<', nowMs)
      .orderBy('leaseExpiresAtMs')
      .limit(Math.max(1, Math.floor(limit)))
      .execute();
    const ended: JobRecord[] = [];
    for (const candidate of candidates) {
      const expiresAtMs = Number(candidate.leaseExpiresAtMs);
      const lastSeenAtMs = Number(candidate.lastSeenAtMs ?? expiresAtMs);
      const { reason, outbox } = await verdict({
        jobId: candidate.jobId,
        lastSeenAtMs,
        leaseExpiresAtMs: expiresAtMs,
      });
      const done = await this.#transaction(candidate.jobId, async (trx) => {
        // Conditional: a heartbeat that renewed the lease since the scan (here or on another sidecar) wins.
        const result = await trx
          .updateTable('TrainingJob')
          .set({
            status: 'failed',
            endCause: 'lease_expired',
            endReason: reason,
            endedAt: new Date(lastSeenAtMs),
            leaseExpiresAtMs: null,
            updatedAt: new Date(nowMs),
          })
          .where('jobId', '=', candidate.jobId)
          .where('status', '=', 'running')
          .where('leaseExpiresAtMs', '<', nowMs)
          .executeTakeFirst();
        if (result.numUpdatedRows === 0n) return false;
        this.#appendChanges(trx, candidate.jobId, 'job');
        if (outbox?.length)
          await trx
            .insertInto('OutboxItem')
            .values(outboxRows(candidate.jobId, outbox, nowMs))
            .execute();
        return true;
      });
      if (done) ended.push(await this.#readJob(candidate.jobId));
    }
    return ended;
  }

  async endLostJob(input: LostJobInput): Promise<JobRecord | undefined> {
    const key = trainerProcessKey(input.trainer);
    if (key === '') return undefined;
    const done = await this.#transaction(input.jobId, async (trx) => {
      const result = await trx
        .updateTable('TrainingJob')
        .set({
          status: 'failed',
          endCause: 'process_exited',
          endReason: input.reason,
          endedAt: input.endedAt,
          leaseExpiresAtMs: null,
          updatedAt: new Date(),
        })
        .where('jobId', '=', input.jobId)
        .where('status', '=', 'running')
        .where('trainerProcess', '=', key)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) return false;
      this.#appendChanges(trx, input.jobId, 'job');
      if (input.outbox?.length)
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(input.jobId, input.outbox, Date.now()))
          .execute();
      return true;
    });
    return done ? this.#readJob(input.jobId) : undefined;
  }

  async extendLeases(untilMs: number): Promise<number> {
    return this.#transaction('', async (trx) => {
      const result = await trx
        .updateTable('TrainingJob')
        .set({ leaseExpiresAtMs: untilMs })
        .where('status', '=', 'running')
        .where((eb) => eb.or([eb('leaseExpiresAtMs', 'is', null), eb('leaseExpiresAtMs', '<', untilMs)]))
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    });
  }

  async runningTrainers(bootId: string): Promise<Array<{ jobId: string; trainer: TrainerRecord }>> {
    if (bootId === '') return [];
    const rows = await this.#em().find(
      TrainingJob,
      { status: 'running', trainerProcess: { $ne: '' } },
      { fields: ['jobId', 'trainer', 'trainerProcess'], disableIdentityMap: true },
    );
    return rows.flatMap((row) =>
      row.trainer && row.trainerProcess.startsWith(`${bootId}/`)
        ? [{ jobId: row.jobId, trainer: row.trainer }]
        : [],
    );
  }

  async putArtifacts(
    jobId: string,
    artifacts: readonly ArtifactRecord[],
    options: OutboxWrite = {},
  ): Promise<void> {
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
    await this.#transaction(jobId, async (trx) => {
      await this.#lockRunningJob(trx, jobId);
      for (let i = 0; i < rows.length; i += INSERT_CHUNK_ROWS) {
        const stored = await trx
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
          .returning('id')
          .execute();
        this.#appendChanges(
          trx,
          jobId,
          'artifact',
          stored.map((r) => Number(r.id)),
        );
      }
      if (options.outbox?.length) {
        await trx
          .insertInto('OutboxItem')
          .values(outboxRows(jobId, options.outbox, Date.now()))
          .execute();
      }
    });
  }

  async listArtifacts(jobId: string, page: ArtifactPage = {}): Promise<ListedArtifact[]> {
    const rows = await this.#em().find(
      Artifact,
      {
        job: jobId,
        ...(page.afterId !== undefined && { id: { $gt: page.afterId } }),
        ...(page.artifactPath !== undefined && { artifactPath: page.artifactPath }),
      },
      {
        // Logging order: the id of the first logging (a re-logged path keeps its place).
        orderBy: { id: 'asc' },
        disableIdentityMap: true,
        ...(page.limit !== undefined && { limit: Math.max(1, Math.floor(page.limit)) }),
      },
    );
    return rows.map((row) => ({ ...toArtifactRecord(row), id: row.id }));
  }

  async setMlflowIds(jobId: string, experimentId: string, runId: string): Promise<void> {
    await this.#transaction(jobId, async (trx) => {
      const result = await trx
        .updateTable('TrainingJob')
        .set({ mlflowExperimentId: experimentId, mlflowRunId: runId, updatedAt: new Date() })
        .where('jobId', '=', jobId)
        .executeTakeFirst();
      if (result.numUpdatedRows === 0n) throw notFound(jobId);
      this.#appendChanges(trx, jobId, 'mlflow');
    });
  }

  /** One `mlflow` change per distinct job of the outbox items `ids` (inside `trx`, before they change). */
  async #mlflowChangesOfItems(trx: StoreTransaction, ids: readonly number[]): Promise<void> {
    const jobs = await trx.selectFrom('OutboxItem').select('job').distinct().where('id', 'in', ids).execute();
    for (const { job } of jobs) this.#appendChanges(trx, job as unknown as string, 'mlflow');
  }

  // ---- the outbox -------------------------------------------------------------------------------

  #kysely() {
    return this.#em().getKysely<StoreDB>(KYSELY_OPTIONS);
  }

  async enqueueOutbox(jobId: string, items: readonly OutboxItemInput[], nowMs: number): Promise<void> {
    if (items.length === 0) return;
    const em = this.#em();
    try {
      await em
        .getKysely<StoreDB>(KYSELY_OPTIONS)
        .insertInto('OutboxItem')
        .values(outboxRows(jobId, items, nowMs))
        .execute();
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  async outboxDueJobs(nowMs: number, limit: number): Promise<string[]> {
    const rows = await dueJobsQuery(this.#kysely(), { nowMs, limit: outboxLimit(limit) }).execute();
    return rows.map((r) => r.job as unknown as string);
  }

  async peekOutbox(
    jobId: string,
    limit: number,
    maxBlockPoints = Number.POSITIVE_INFINITY,
  ): Promise<StoredOutboxItem[]> {
    const db = this.#kysely();
    const rows = await peekQuery(db, { job: jobId, limit: outboxLimit(limit) }).execute();
    return peekItems(rows, jobId, maxBlockPoints, (id) => blockQuery(db, { id }).executeTakeFirst());
  }

  async completeOutbox(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    await this.#transaction('', async (trx) => {
      for (let i = 0; i < ids.length; i += INSERT_CHUNK_ROWS) {
        const chunk = ids.slice(i, i + INSERT_CHUNK_ROWS);
        await this.#mlflowChangesOfItems(trx, chunk);
        await trx.deleteFrom('OutboxItem').where('id', 'in', chunk).execute();
      }
    });
  }

  async rescheduleOutboxItem(
    id: number,
    update: { attempts: number; nextAttemptAtMs: number; lastError: string },
  ): Promise<void> {
    await this.#kysely()
      .updateTable('OutboxItem')
      .set({
        attempts: update.attempts,
        nextAttemptAtMs: update.nextAttemptAtMs,
        lastError: update.lastError,
      })
      .where('id', '=', id)
      .execute();
  }

  async parkOutboxItem(id: number, error: string): Promise<void> {
    await this.#transaction('', async (trx) => {
      await this.#mlflowChangesOfItems(trx, [id]);
      await trx.updateTable('OutboxItem').set({ parkedError: error }).where('id', '=', id).execute();
    });
  }

  async retryOutboxNow(jobId: string | undefined, nowMs: number): Promise<number> {
    return this.#transaction(jobId ?? '', async (trx) => {
      let query = trx
        .updateTable('OutboxItem')
        .set({ parkedError: null, nextAttemptAtMs: nowMs })
        .where((eb) => eb.or([eb('parkedError', 'is not', null), eb('nextAttemptAtMs', '>', nowMs)]));
      if (jobId !== undefined) query = query.where('job', '=', jobId);
      const result = await query.executeTakeFirst();
      const retried = Number(result.numUpdatedRows);
      if (retried > 0 && jobId !== undefined) this.#appendChanges(trx, jobId, 'mlflow');
      return retried;
    });
  }

  async outboxNextDueAtMs(claims?: { owner: string; nowMs: number }): Promise<number | undefined> {
    const db = this.#kysely();
    const row = await (claims ? nextDueForOwnerQuery(db, claims) : nextDueQuery(db)).executeTakeFirst();
    return row === undefined ? undefined : Number(row.nextAttemptAtMs);
  }

  async claimOutboxJobs(terms: OutboxClaimTerms, limit: number): Promise<string[]> {
    const wanted = outboxLimit(limit);
    const claim = async (db: StoreKysely | StoreTransaction): Promise<string[]> => {
      const won: string[] = [];
      // Another store may win some of the jobs picked (it picked them too, at the same moment): pick
      // again among those left, a few times, rather than come back with less than there is.
      for (let round = 0; round < CLAIM_ROUNDS && won.length < wanted; round++) {
        const query = claimableJobsQuery(
          db,
          { ...terms, limit: wanted - won.length, except: won },
          this.#claimLocking,
        );
        const picked = (await query.execute()).map((r) => r.job as unknown as string);
        if (picked.length === 0) break;
        const rows = await claimJobsQuery(db, picked, terms).execute();
        const taken = new Set(rows.map((r) => r.job as unknown as string));
        won.push(...picked.filter((job) => taken.has(job)));
        if (taken.size === picked.length) break;
      }
      return won;
    };
    // Where rows lock, one transaction: the picked heads stay locked (skipped by other claimers) until
    // the claims commit. Without row locks a transaction would add nothing but holding SQLite's write
    // lock across the pick: the conditional upsert alone decides who wins.
    if (this.#claimLocking === 'none') return claim(this.#kysely());
    return this.#transaction('', claim);
  }

  async renewOutboxClaims(terms: OutboxClaimTerms, jobIds: readonly string[]): Promise<string[]> {
    if (jobIds.length === 0) return [];
    const db = this.#kysely();
    const held: string[] = [];
    for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
      const rows = await renewClaimsQuery(db, jobIds.slice(i, i + INSERT_CHUNK_ROWS), terms).execute();
      for (const row of rows) held.push(row.job as unknown as string);
    }
    return held;
  }

  async releaseIdleOutboxClaims(owner: string, jobIds: readonly string[]): Promise<string[]> {
    const db = this.#kysely();
    const released: string[] = [];
    for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
      const chunk = jobIds.slice(i, i + INSERT_CHUNK_ROWS);
      for (const row of await releaseIdleClaimsQuery(db, owner, chunk).execute()) {
        released.push(row.job as unknown as string);
      }
    }
    return released;
  }

  async releaseOutboxClaims(owner: string | undefined, jobIds?: readonly string[]): Promise<void> {
    if (jobIds?.length === 0) return;
    const db = this.#kysely();
    const chunks: (readonly string[] | undefined)[] = jobIds === undefined ? [undefined] : [];
    for (let i = 0; jobIds && i < jobIds.length; i += INSERT_CHUNK_ROWS) {
      chunks.push(jobIds.slice(i, i + INSERT_CHUNK_ROWS));
    }
    for (const chunk of chunks) {
      let query = db.deleteFrom('OutboxClaim');
      if (owner !== undefined) query = query.where('claimedBy', '=', owner);
      if (chunk !== undefined) query = query.where('job', 'in', chunk);
      await query.execute();
    }
  }

  async outboxStatus(jobIds: readonly string[]): Promise<Map<string, OutboxStatus>> {
    const out = new Map<string, OutboxStatus>();
    if (jobIds.length === 0) return out;
    const db = this.#kysely();
    for (let i = 0; i < jobIds.length; i += INSERT_CHUNK_ROWS) {
      const jobs = [...new Set(jobIds.slice(i, i + INSERT_CHUNK_ROWS))];
      const counts = await statusCountsQuery(db, { jobs }).execute();
      for (const [job, status] of outboxStatuses(counts)) out.set(job, status);
    }
    return out;
  }

  async operationalCounts(): Promise<OperationalCounts> {
    const db = this.#kysely();
    const jobs = await db
      .selectFrom('TrainingJob')
      .select((eb) => ['status', eb.fn.countAll<number>().as('n')])
      .groupBy('status')
      .execute();
    const outbox = await db
      .selectFrom('OutboxItem')
      .select((eb) => [eb.fn.countAll<number>().as('pending'), eb.fn.min('createdAtMs').as('oldest')])
      .executeTakeFirst();
    const parked = await db
      .selectFrom('OutboxItem')
      .select((eb) => eb.fn.count<number>('job').distinct().as('jobs'))
      .where('parkedError', 'is not', null)
      .executeTakeFirst();
    // A parked job's queue waits behind its parked head: none of its entries is sent until a retry.
    const stuck = await db
      .selectFrom('OutboxItem')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('job', 'in', db.selectFrom('OutboxItem').select('job').where('parkedError', 'is not', null))
      .executeTakeFirst();
    const jobsByStatus: Record<JobStatus, number> = { running: 0, completed: 0, failed: 0, cancelled: 0 };
    for (const row of jobs) jobsByStatus[row.status as JobStatus] = Number(row.n);
    const oldest = outbox?.oldest;
    return {
      jobsByStatus,
      outboxPending: Number(outbox?.pending ?? 0),
      ...(oldest !== null && oldest !== undefined && { outboxOldestCreatedAtMs: Number(oldest) }),
      parkedJobs: Number(parked?.jobs ?? 0),
      outboxParkedItems: Number(stuck?.n ?? 0),
    };
  }

  async getMirrorState(jobId: string): Promise<MirrorState | undefined> {
    const row = await mirrorStateQuery(this.#kysely(), { jobId }).executeTakeFirst();
    return row ? mirrorStateOf(row) : undefined;
  }

  async saveMirrorState(jobId: string, state: MirrorState): Promise<void> {
    await this.#transaction(jobId, async (trx) => {
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
      this.#appendChanges(trx, jobId, 'mlflow');
    });
  }

  // ---- the change feed --------------------------------------------------------------------------

  async readChanges(query: ChangesQuery): Promise<ChangeRecord[]> {
    const limit = Math.max(1, Math.floor(query.limit));
    const rows = await this.#hot.changesAfter(this.#tables, {
      afterSeq: query.afterSeq,
      limit,
      ...(query.jobId !== undefined && { jobId: query.jobId }),
    });
    return rows.map((r) => ({ seq: r.seq, jobId: r.jobId, kind: r.kind, ref: r.ref }));
  }

  async compactChanges(range: { fromSeq: number; toSeq: number }): Promise<number> {
    if (!(range.toSeq > range.fromSeq)) return 0;
    return this.#tableTransaction('', (trx) => compactChanges(trx, range.fromSeq, range.toSeq));
  }

  async firstSeq(): Promise<number> {
    const row = await this.#kysely()
      .selectFrom('StoreChange')
      .select((eb) => eb.fn.min('seq').as('first'))
      .executeTakeFirst();
    return row?.first == null ? 0 : Number(row.first);
  }

  async headSeq(): Promise<number> {
    const row = await this.#kysely()
      .selectFrom('StoreChange')
      .select((eb) => eb.fn.max('seq').as('head'))
      .executeTakeFirst();
    return row?.head == null ? 0 : Number(row.head);
  }

  onCommit(listener: (jobId: string | undefined) => void): () => void {
    return this.#committed.add(listener);
  }

  // getJob, getEpoch and getBatchBlock serve the watch streams, hundreds of times a second: on the
  // table view, bound keys (one prepared statement each), no entity hydrated.
  async getEpoch(jobId: string, epoch: number): Promise<EpochRecord | undefined> {
    const row = await this.#hot.reportedEpoch(this.#tables, jobId, epoch);
    return row ? toEpochRecord(jobId, row as unknown as TrainingMetric) : undefined;
  }

  async getBatchBlock(id: number): Promise<StoredBatchBlock | undefined> {
    const block = await this.#hot.blockById(this.#tables, id);
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

  async readBatchBlocks(
    jobId: string,
    query: { afterId: number; limit: number; minStep?: bigint; maxStep?: bigint },
  ): Promise<StoredBatchBlock[]> {
    const where: Record<string, unknown> = { job: jobId, id: { $gt: query.afterId } };
    if (query.minStep !== undefined) where.lastStep = { $gte: query.minStep };
    if (query.maxStep !== undefined) where.firstStep = { $lte: query.maxStep };
    const rows = await this.#em().find(BatchMetricBlock, where, {
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

  async batchStepRange(jobId: string): Promise<{ first: bigint; last: bigint } | undefined> {
    const row = await this.#kysely()
      .selectFrom('BatchMetricBlock')
      .select((eb) => [eb.fn.min('firstStep').as('first'), eb.fn.max('lastStep').as('last')])
      .where('job', '=', jobId)
      .executeTakeFirst();
    if (row?.first == null || row.last == null) return undefined;
    return { first: BigInt(row.first as never), last: BigInt(row.last as never) };
  }

  async getArtifact(id: number): Promise<StoredArtifact | undefined> {
    const row = await this.#em().findOne(Artifact, { id }, { disableIdentityMap: true });
    if (!row) return undefined;
    return {
      id,
      jobId: row.job.jobId,
      artifactPath: row.artifactPath,
      sizeBytes: row.sizeBytes,
      sha256: row.sha256,
      sourcePath: row.sourcePath,
      storedPath: row.storedPath,
      loggedAt: row.loggedAt,
    };
  }

  async replaceOutbox(
    jobId: string,
    build: (job: JobSnapshot) => { before: OutboxItemInput[]; blockKind: string; after: OutboxItemInput[] },
    nowMs: number,
  ): Promise<{ dropped: number; queued: number; job: JobRecord }> {
    const result = await this.#transaction(jobId, async (trx) => {
      // Under the job row's lock, everything read in this transaction: no end, resume or epoch of the
      // job (saveEpoch writes the row) on any sidecar commits between the copy and the drop of the
      // entries it replaces, and batch blocks and artifacts wait on the row's share lock.
      await this.#lockJob(trx, jobId, 'update');
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
      this.#appendChanges(trx, jobId, 'mlflow');
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

  async probeWrite(): Promise<void> {
    try {
      await this.#hot.probeWrite(this.#tables);
    } catch (error) {
      throw convertError(this.#orm.em as EntityManager, error);
    }
  }

  async close(): Promise<void> {
    await this.#orm.close(true);
  }
}
