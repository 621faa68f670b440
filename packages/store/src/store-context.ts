// The context every concern of the store works on (store-jobs.ts, store-epochs.ts, …): the ORM, the
// hot paths on the table view, the transactions that write the change feed before they commit, and the
// job-row locks that decide whether a job still runs.
import {
  ForeignKeyConstraintViolationException,
  type MikroORM,
  UniqueConstraintViolationException,
} from '@mikro-orm/core';
import type { EntityManager } from '@mikro-orm/sql';
import { CommitSignal } from './change-feed.ts';
import type { TrainingJob } from './entities.ts';
import { GroupCommit } from './group-commit.ts';
import {
  HotPath,
  runTableTransaction,
  type TableKysely,
  type TableTransaction,
  tooManyFeedRows,
} from './hot-path.ts';
import { KYSELY_OPTIONS, type StoreDB } from './kysely-db.ts';
import type { ClaimLocking } from './outbox-queries.ts';
import { postgresCode } from './postgres-code.ts';
import { type SqliteTransactions, sqliteTransactionsOf } from './sqlite-transactions.ts';
import { StoreError } from './store-error.ts';
import { toJobRecord } from './store-records.ts';
import type { BestEpoch, ChangeKind, JobRecord, OutboxItemInput, StoreDialect } from './types.ts';

/** Rows per multi-row INSERT: keeps every statement far below SQLite's 32766 bound parameters. */
export const INSERT_CHUNK_ROWS = 500;

/** Kysely queries surface the driver's own errors: convert them like MikroORM does its own. */
export function convertError(em: EntityManager, error: unknown): unknown {
  if (error instanceof StoreError || !(error instanceof Error)) return error;
  return em.getPlatform().getExceptionConverter().convertException(error);
}

/**
 * Turns a driver's constraint violation — and PostgreSQL's refusal of a transaction's 65,537th feed
 * row — into a StoreError; anything else passes through.
 */
export function mapDriverError(error: unknown, jobId: string): unknown {
  if (isFeedRowsRefusal(error)) {
    // checkFeedRows refuses one call before it writes; this is the database's backstop, met by a
    // transaction whose several calls together append more (the sidecar answers RESOURCE_EXHAUSTED).
    return tooManyFeedRows(jobId, undefined, error);
  }
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

/** `tc_feed_seq()`'s program_limit_exceeded (migration feed_ordered_by_transaction), by its message. */
function isFeedRowsRefusal(error: unknown): boolean {
  if (postgresCode(error) !== '54000') return false;
  for (let e = error; e instanceof Error; e = e.cause) if (e.message.includes(FEED_ROWS_REFUSAL)) return true;
  return false;
}

/** What `tc_feed_seq()` says when one transaction appends more feed rows than its seqs can number. */
const FEED_ROWS_REFUSAL = 'one transaction appends at most 65536 change-feed rows';

export function notFound(jobId: string): StoreError {
  return new StoreError('not_found', `job ${JSON.stringify(jobId)} not found`);
}

/** A report for a job that has ended: the sidecar answers FAILED_PRECONDITION. */
export function jobEnded(jobId: string, status: string): StoreError {
  return new StoreError(
    'ended',
    `job ${JSON.stringify(jobId)} has ended (${status}); reports after the end are refused — ` +
      'call BeginTraining again to resume a failed or cancelled job, or use a new job id',
  );
}

/** An end for a job that is no longer running (another end, or a verdict, came first). */
export function alreadyEnded(jobId: string, status: string): StoreError {
  return new StoreError('ended', `job ${JSON.stringify(jobId)} already ended (${status}); a job ends once`);
}

/** What an epoch report is decided from without a transaction: the job row as last written. */
export interface EpochJobState {
  version: string;
  best: BestEpoch | null;
  primaryMetric: string;
}

/** Outbox rows for `items`, due at once. */
export function outboxRows(jobId: string, items: readonly OutboxItemInput[], nowMs: number) {
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

/** A Kysely transaction on the store's tables (MikroORM's Kysely, values bound). */
export type StoreTransaction = Parameters<
  Parameters<ReturnType<StoreKysely['transaction']>['execute']>[0]
>[0];

export type StoreKysely = ReturnType<typeof storeKysely>;

export function storeKysely(em: EntityManager) {
  return em.getKysely<StoreDB>(KYSELY_OPTIONS);
}

/** What every concern of the store works on: the ORM, the hot paths, and the transactions. */
export class StoreContext {
  readonly orm: MikroORM;
  readonly hot: HotPath;
  /** Kysely on table and column names, without MikroORM's plugin (the hot paths). */
  readonly tables: TableKysely;
  readonly committed = new CommitSignal();
  /** Feed entries of open transactions, written last, just before the commit (see transaction). */
  readonly #pendingChanges = new WeakMap<
    StoreTransaction,
    Array<[string, ChangeKind, readonly (number | null)[]]>
  >();
  /**
   * Whether the database locks rows (`SELECT … FOR SHARE / FOR NO KEY UPDATE`). SQLite has no row locks and
   * needs none: every transaction is BEGIN IMMEDIATE and holds the database's write lock throughout.
   */
  readonly rowLocks: boolean;
  /**
   * PostgreSQL: the job rows this store's epoch reports wrote last (version, best epoch, primary
   * metric), from which the next report of the job is decided without a transaction. Only a guess
   * to try: the database refuses the write once the row has another version (see saveEpochFrom in store-epochs.ts).
   */
  readonly epochJobs = new Map<string, EpochJobState>();
  /** SQLite: the batch appends' shared transactions (see group-commit.ts); PostgreSQL has many writers. */
  readonly groupCommit: GroupCommit | undefined;
  /** SQLite: the hot paths' statements straight on their transaction's connection (sqlite-transactions.ts). */
  readonly #sqliteTransactions: SqliteTransactions | undefined;

  constructor(orm: MikroORM, dialect: StoreDialect) {
    this.orm = orm;
    this.hot = new HotPath(dialect, orm);
    this.tables = (orm.em.fork() as EntityManager).getKysely() as unknown as TableKysely;
    this.rowLocks = dialect === 'postgresql';
    this.#sqliteTransactions = dialect === 'sqlite' ? sqliteTransactionsOf(orm) : undefined;
    this.groupCommit =
      dialect === 'sqlite' ? new GroupCommit(this.tables, this.#sqliteTransactions) : undefined;
  }

  /** How {@link claimOutboxJobs} picks jobs: past the rows other claimers lock, where rows lock. */
  get claimLocking(): ClaimLocking {
    return this.rowLocks ? 'skip-locked' : 'none';
  }

  /** A fresh EntityManager for one call. */
  em(): EntityManager {
    return this.orm.em.fork() as EntityManager;
  }

  /** Kysely through MikroORM's plugin (entity and property names), on a fresh EntityManager. */
  kysely() {
    return this.em().getKysely<StoreDB>(KYSELY_OPTIONS);
  }

  /**
   * Runs `write` in one Kysely transaction, whose values are bound parameters (MikroORM's own
   * `nativeUpdate`/query builder inline them into the SQL text, where a NUL in an error message ends
   * the statement); driver errors become StoreErrors as in every other write.
   */
  async transaction<T>(jobId: string, write: (trx: StoreTransaction) => Promise<T>): Promise<T> {
    const em = this.em();
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
            for (const [job, kind, refs] of pending) await this.hot.appendChanges(tables, job, kind, refs);
          }
          return result;
        });
      if (appended) this.committed.fire(jobId || undefined);
      return result;
    } catch (error) {
      throw mapDriverError(convertError(em, error), jobId);
    }
  }

  /** A transaction of the hot paths (table names, no plugin); driver errors become StoreErrors. */
  async tableTransaction<T>(jobId: string, write: (trx: TableTransaction) => Promise<T>): Promise<T> {
    try {
      return await runTableTransaction(this.tables, this.#sqliteTransactions, write);
    } catch (error) {
      throw mapDriverError(convertError(this.orm.em as EntityManager, error), jobId);
    }
  }

  /**
   * {@link tableTransaction} for a batch append of `points` points. On SQLite it shares the
   * transaction of the other appends of the event loop's turn, in its own savepoint, and resolves
   * after the shared commit (group-commit.ts).
   */
  async batchTransaction<T>(
    jobId: string,
    points: number,
    write: (trx: TableTransaction) => Promise<T>,
  ): Promise<T> {
    if (!this.groupCommit) return this.tableTransaction(jobId, write);
    try {
      return await this.groupCommit.run(points, write);
    } catch (error) {
      throw mapDriverError(convertError(this.orm.em as EntityManager, error), jobId);
    }
  }

  /**
   * Records feed entries of `trx` (see change-feed.ts). They are written when `write` is done, just
   * before the commit, in the order they were recorded.
   */
  appendChanges(
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
   *
   * `update` is PostgreSQL's FOR NO KEY UPDATE, the lock an UPDATE of the row takes anyway, not FOR
   * UPDATE: FOR UPDATE also blocks the key-share lock a foreign-key check takes, and every feed row
   * references its job: writing a job's feed row would wait for every transaction that changes the
   * job, and (while the feed had an order lock, before 2026-12-07) that made a deadlock (40P01; CI met
   * it between an EndTraining and the mirror's completion of the job's items).
   */
  async lockJob(trx: StoreTransaction, jobId: string, mode: 'share' | 'update') {
    const row = await trx
      .selectFrom('TrainingJob')
      .select(['status', 'endCause', 'bestValue', 'primaryMetric', 'startEpoch', 'clientLosses'])
      .where('jobId', '=', jobId)
      .$if(this.rowLocks, (q) => (mode === 'share' ? q.forShare() : q.forNoKeyUpdate()))
      .executeTakeFirst();
    if (!row) throw notFound(jobId);
    return row;
  }

  /** A report's check, on the table view (every batch stream runs it): `ended` unless the job runs. */
  async lockRunningJob(trx: StoreTransaction, jobId: string): Promise<void> {
    const status = await this.hot.lockJobShared(trx.withoutPlugins() as unknown as TableTransaction, jobId);
    if (status === undefined) throw notFound(jobId);
    if (status !== 'running') throw jobEnded(jobId, status);
  }

  async readJob(jobId: string): Promise<JobRecord> {
    const row = await this.hot.jobById(this.tables, jobId);
    if (!row) throw notFound(jobId);
    return toJobRecord(row as unknown as TrainingJob);
  }
}
