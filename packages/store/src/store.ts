// The store: maps the public records onto the entities, on either dialect. Every call runs one short
// transaction of Kysely queries with bound parameters: through MikroORM's Kysely plugin (entity and
// property names, values converted by the entities' types; see kysely-db.ts), or, on the hot paths
// (an epoch report or begin, a batch append, the change feed), on table and column names without it
// (hot-path.ts).
// The rules that must hold across sidecars sharing a database (a job that has ended takes no more
// reports; the best epoch) are decided inside those transactions, from the rows they lock.
// This file is the wiring: openStore, and a Store whose methods hand the shared StoreContext
// (store-context.ts) to the module of their concern (store-jobs.ts, store-epochs.ts, store-batches.ts,
// store-leases.ts, store-artifacts.ts, store-outbox.ts, store-mirror.ts, store-feed.ts, store-counts.ts).
import type { MikroORM } from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import * as storedArtifacts from './store-artifacts.ts';
import * as batches from './store-batches.ts';
import { convertError, StoreContext } from './store-context.ts';
import * as counts from './store-counts.ts';
import * as epochs from './store-epochs.ts';
import * as feed from './store-feed.ts';
import * as jobs from './store-jobs.ts';
import * as leases from './store-leases.ts';
import * as mirror from './store-mirror.ts';
import * as outbox from './store-outbox.ts';
import type {
  ArtifactPage,
  ArtifactRecord,
  BatchAppendResult,
  BatchBlock,
  BatchBlockPage,
  ChangePosition,
  ChangeRecord,
  ChangesQuery,
  EndJobInput,
  EpochPage,
  EpochRecord,
  ExpiredLease,
  JobRecord,
  JobSnapshot,
  LeaseRenewal,
  LeaseVerdict,
  ListedArtifact,
  ListedBatchBlock,
  ListJobsPage,
  ListJobsQuery,
  LostJobInput,
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
          ...(options.onNotice && { onNotice: options.onNotice }),
        })
      : await (await import('./sqlite-dialect.ts')).openSqliteOrm(options);
  return { orm, dialect };
}

class OrmStore implements Store {
  readonly #ctx: StoreContext;

  constructor(orm: MikroORM, dialect: StoreDialect) {
    this.#ctx = new StoreContext(orm, dialect);
  }

  // ---- store-jobs.ts: the jobs ----------
  async createOrGetJob(
    job: NewJob,
    options: OutboxWrite = {},
  ): Promise<{ job: JobRecord; created: boolean }> {
    return jobs.createOrGetJob(this.#ctx, job, options);
  }

  async reopenJob(jobId: string, changes: ReopenJobChanges): Promise<JobRecord> {
    return jobs.reopenJob(this.#ctx, jobId, changes);
  }

  async getJob(jobId: string): Promise<JobRecord | undefined> {
    return jobs.getJob(this.#ctx, jobId);
  }

  async listJobs(query: ListJobsQuery): Promise<ListJobsPage> {
    return jobs.listJobs(this.#ctx, query);
  }

  async endJob(input: EndJobInput): Promise<JobRecord> {
    return jobs.endJob(this.#ctx, input);
  }

  // ---- store-epochs.ts: epoch reports ----------
  async beginEpoch(jobId: string, epoch: number, at: Date): Promise<void> {
    return epochs.beginEpoch(this.#ctx, jobId, epoch, at);
  }

  async saveEpoch(input: SaveEpochInput): Promise<SavedEpoch> {
    return epochs.saveEpoch(this.#ctx, input);
  }

  async listEpochs(jobId: string, page: EpochPage = {}): Promise<EpochRecord[]> {
    return epochs.listEpochs(this.#ctx, jobId, page);
  }

  async getEpoch(jobId: string, epoch: number): Promise<EpochRecord | undefined> {
    return epochs.getEpoch(this.#ctx, jobId, epoch);
  }

  // ---- store-batches.ts: batch metric blocks ----------
  async appendBatchBlocks(
    jobId: string,
    blocks: readonly BatchBlock[],
    options?: batches.BatchAppendOptions,
  ): Promise<BatchAppendResult> {
    return batches.appendBatchBlocks(this.#ctx, jobId, blocks, options);
  }

  async listBatchBlocks(
    jobId: string,
    epoch?: number,
    page: BatchBlockPage = {},
  ): Promise<ListedBatchBlock[]> {
    return batches.listBatchBlocks(this.#ctx, jobId, epoch, page);
  }

  async getBatchBlock(id: number): Promise<StoredBatchBlock | undefined> {
    return batches.getBatchBlock(this.#ctx, id);
  }

  async readBatchBlocks(
    jobId: string,
    query: { afterId: number; limit: number; minStep?: bigint; maxStep?: bigint },
  ): Promise<StoredBatchBlock[]> {
    return batches.readBatchBlocks(this.#ctx, jobId, query);
  }

  async batchStepRange(jobId: string): Promise<{ first: bigint; last: bigint } | undefined> {
    return batches.batchStepRange(this.#ctx, jobId);
  }

  // ---- store-leases.ts: trainer leases ----------
  async renewLease(jobId: string, options: RenewLeaseOptions): Promise<LeaseRenewal> {
    return leases.renewLease(this.#ctx, jobId, options);
  }

  async expireLeases(
    nowMs: number,
    limit: number,
    verdict: (job: ExpiredLease) => LeaseVerdict | Promise<LeaseVerdict>,
  ): Promise<JobRecord[]> {
    return leases.expireLeases(this.#ctx, nowMs, limit, verdict);
  }

  async endLostJob(input: LostJobInput): Promise<JobRecord | undefined> {
    return leases.endLostJob(this.#ctx, input);
  }

  async extendLeases(untilMs: number): Promise<number> {
    return leases.extendLeases(this.#ctx, untilMs);
  }

  async runningTrainers(bootId: string): Promise<Array<{ jobId: string; trainer: TrainerRecord }>> {
    return leases.runningTrainers(this.#ctx, bootId);
  }

  // ---- store-artifacts.ts: artifacts ----------
  async putArtifacts(
    jobId: string,
    artifacts: readonly ArtifactRecord[],
    options: OutboxWrite = {},
  ): Promise<void> {
    return storedArtifacts.putArtifacts(this.#ctx, jobId, artifacts, options);
  }

  async listArtifacts(jobId: string, page: ArtifactPage = {}): Promise<ListedArtifact[]> {
    return storedArtifacts.listArtifacts(this.#ctx, jobId, page);
  }

  async getArtifact(id: number): Promise<StoredArtifact | undefined> {
    return storedArtifacts.getArtifact(this.#ctx, id);
  }

  // ---- store-outbox.ts: the outbox of MLflow writes ----------
  async enqueueOutbox(jobId: string, items: readonly OutboxItemInput[], nowMs: number): Promise<void> {
    return outbox.enqueueOutbox(this.#ctx, jobId, items, nowMs);
  }

  async outboxDueJobs(nowMs: number, limit: number): Promise<string[]> {
    return outbox.outboxDueJobs(this.#ctx, nowMs, limit);
  }

  async peekOutbox(
    jobId: string,
    limit: number,
    maxBlockPoints = Number.POSITIVE_INFINITY,
  ): Promise<StoredOutboxItem[]> {
    return outbox.peekOutbox(this.#ctx, jobId, limit, maxBlockPoints);
  }

  async completeOutbox(ids: readonly number[]): Promise<void> {
    return outbox.completeOutbox(this.#ctx, ids);
  }

  async rescheduleOutboxItem(
    id: number,
    update: { attempts: number; nextAttemptAtMs: number; lastError: string },
  ): Promise<void> {
    return outbox.rescheduleOutboxItem(this.#ctx, id, update);
  }

  async parkOutboxItem(id: number, error: string): Promise<void> {
    return outbox.parkOutboxItem(this.#ctx, id, error);
  }

  async retryOutboxNow(jobId: string | undefined, nowMs: number): Promise<number> {
    return outbox.retryOutboxNow(this.#ctx, jobId, nowMs);
  }

  async outboxNextDueAtMs(claims?: { owner: string; nowMs: number }): Promise<number | undefined> {
    return outbox.outboxNextDueAtMs(this.#ctx, claims);
  }

  async claimOutboxJobs(terms: OutboxClaimTerms, limit: number): Promise<string[]> {
    return outbox.claimOutboxJobs(this.#ctx, terms, limit);
  }

  async renewOutboxClaims(terms: OutboxClaimTerms, jobIds: readonly string[]): Promise<string[]> {
    return outbox.renewOutboxClaims(this.#ctx, terms, jobIds);
  }

  async releaseIdleOutboxClaims(owner: string, jobIds: readonly string[]): Promise<string[]> {
    return outbox.releaseIdleOutboxClaims(this.#ctx, owner, jobIds);
  }

  async releaseOutboxClaims(owner: string | undefined, jobIds?: readonly string[]): Promise<void> {
    return outbox.releaseOutboxClaims(this.#ctx, owner, jobIds);
  }

  async outboxStatus(jobIds: readonly string[]): Promise<Map<string, OutboxStatus>> {
    return outbox.outboxStatus(this.#ctx, jobIds);
  }

  // ---- store-mirror.ts: a job's MLflow mirror ----------
  async setMlflowIds(jobId: string, experimentId: string, runId: string): Promise<void> {
    return mirror.setMlflowIds(this.#ctx, jobId, experimentId, runId);
  }

  async getMirrorState(jobId: string): Promise<MirrorState | undefined> {
    return mirror.getMirrorState(this.#ctx, jobId);
  }

  async saveMirrorState(jobId: string, state: MirrorState): Promise<void> {
    return mirror.saveMirrorState(this.#ctx, jobId, state);
  }

  async replaceOutbox(
    jobId: string,
    build: (job: JobSnapshot) => { before: OutboxItemInput[]; blockKind: string; after: OutboxItemInput[] },
    nowMs: number,
  ): Promise<{ dropped: number; queued: number; job: JobRecord }> {
    return mirror.replaceOutbox(this.#ctx, jobId, build, nowMs);
  }

  // ---- store-feed.ts: the change feed (see change-feed.ts) ----------
  async readChanges(query: ChangesQuery): Promise<ChangeRecord[]> {
    return feed.readChanges(this.#ctx, query);
  }

  async compactChanges(range: { fromSeq: number; toSeq: number }): Promise<number> {
    return feed.compactChanges(this.#ctx, range);
  }

  async firstSeq(): Promise<number> {
    return feed.firstSeq(this.#ctx);
  }

  async headSeq(): Promise<number> {
    return feed.headSeq(this.#ctx);
  }

  async changeSeqAt(at: ChangePosition): Promise<number | undefined> {
    return feed.changeSeqAt(this.#ctx, at);
  }

  onCommit(listener: (jobId: string | undefined) => void): () => void {
    return feed.onCommit(this.#ctx, listener);
  }

  // ---- store-counts.ts: the operational counts ----------
  async operationalCounts(): Promise<OperationalCounts> {
    return counts.operationalCounts(this.#ctx);
  }

  // ---- the database ----------
  async probeWrite(): Promise<void> {
    try {
      await this.#ctx.hot.probeWrite(this.#ctx.tables);
    } catch (error) {
      throw convertError(this.#ctx.orm.em as EntityManager, error);
    }
  }

  async close(): Promise<void> {
    await this.#ctx.orm.close(true);
  }
}
