// The public types of the store. Records are plain objects: no ORM entity leaves the package.

/** Where a job is in its life. */
export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** Which database the store runs on. Only 'sqlite' exists today; 'postgresql' is the planned second. */
export type StoreDialect = 'sqlite' | 'postgresql';

/** Options of {@link openStore}. */
export interface StoreOptions {
  /**
   * SQLite file path (its parent directory is created if missing), or ':memory:'; or a PostgreSQL
   * URL, `postgres://user@host:5432/db?sslmode=…` (see `postgresql-dialect.ts` for what it honours).
   */
  dbPath: string;
  /** PostgreSQL: connections of this store's pool (default 10). */
  poolSize?: number;
  /**
   * 'normal' (default): a commit survives a crash of the process (WAL, synchronous=NORMAL); a power
   * loss may lose the last commits. 'full': synchronous=FULL, a commit also survives a power loss,
   * at the cost of an fsync per commit.
   */
  durability?: 'normal' | 'full';
  /** Log every SQL statement through MikroORM's logger. */
  debug?: boolean;
  /** The database dialect; by default told from `dbPath` (a `postgres://` URL, else SQLite). */
  dialect?: StoreDialect;
  /**
   * The integrity check of an existing file when it opens (PRAGMA quick_check on a thread of its
   * own). `timeoutMs` (default 10 000; 0 skips the check) bounds how long opening waits for it: a
   * longer check goes on while the store serves, and damage it finds later goes to `onLateDamage`.
   */
  integrityCheck?: { timeoutMs?: number; onLateDamage?: (error: Error) => void };
  /**
   * Told what an operator should know that fails nothing: PostgreSQL lost one of the store's prepared
   * statements (a pooler in transaction mode that does not keep them), so statements go unnamed from then on.
   */
  onNotice?: (message: string) => void;
}

/** Definition of a custom metric, for display and best-epoch direction. */
export interface CustomMetricDefinition {
  name: string;
  label: string;
  format: 'percent' | 'float' | 'int';
  higherIsBetter: boolean;
  description: string;
}

/** What a client could not deliver for a job (the contract's ClientLosses). */
export interface ClientLossesRecord {
  /** Batch points never delivered (dropped by the client, or not acknowledged by its deadline). */
  droppedPoints: number;
  /** Batch points the sidecar refused. */
  refusedPoints: number;
  /** Writes refused, or not acknowledged by the client's deadline. */
  failedWrites: number;
  /** Why, one line per distinct reason. */
  reasons: string[];
}

/** Why a job is no longer running (the contract's EndCause): reported, or a verdict on a lost trainer. */
export type EndCause = 'reported' | 'lease_expired' | 'process_exited';

/** The causes that are verdicts on a lost trainer, which a heartbeat or report of its session revises. */
export const LOST_CAUSES: readonly EndCause[] = ['lease_expired', 'process_exited'];

/** Who the trainer is (the contract's TrainerProcess), as sent with BeginTraining. */
export interface TrainerRecord {
  pid: number;
  /** The process start time in clock ticks since boot (/proc/<pid>/stat field 22), as a decimal string. */
  startTimeTicks: string;
  hostname: string;
  bootId: string;
  sessionId: string;
}

/** A stored training job. Optional fields are absent (not `undefined`-valued) when unset. */
export interface JobRecord {
  jobId: string;
  task: string;
  framework: string;
  modelName: string;
  status: JobStatus;
  modelConfig: Record<string, unknown>;
  trainingConfig: Record<string, unknown>;
  params: Record<string, string>;
  /** The MLflow run name asked for by the last BeginTraining; empty: the default (`job_<jobId>`). */
  runName: string;
  /** Extra MLflow run tags sent by the last BeginTraining. */
  tags: Record<string, string>;
  customMetrics: CustomMetricDefinition[];
  /** The epoch training (re)started from at the last BeginTraining. */
  startEpoch: number;
  /** Number of epochs stored (distinct epoch numbers reported through saveEpoch). */
  epochsReported: number;
  primaryMetric: string;
  bestEpoch?: number;
  bestValue?: number;
  /** Final metrics; NaN and ±Infinity come back as they were given. */
  finalMetrics: Record<string, number>;
  finalPrimaryValue?: number;
  finalAccuracy?: number;
  errorMessage: string;
  /** What the trainer's client could not deliver, as reported with EndTraining; absent when nothing. */
  clientLosses?: ClientLossesRecord;
  /** Empty until the MLflow bridge mirrors the job. */
  mlflowExperimentId: string;
  /** Empty until the MLflow bridge mirrors the job. */
  mlflowRunId: string;
  createdAt: Date;
  updatedAt: Date;
  endedAt?: Date;
  /** Why the job is no longer running; absent while it runs (and for jobs ended before causes). */
  endCause?: EndCause;
  /** The verdict on a lost job ("lost: …"); empty otherwise. */
  endReason: string;
  /** The trainer's last heartbeat or report, as recorded. */
  lastSeenAt?: Date;
  /** While running: when the lease runs out. */
  leaseExpiresAt?: Date;
  /** The trainer as sent by the last BeginTraining. */
  trainer?: TrainerRecord;
}

/**
 * An entry for the durable outbox (what the sidecar mirrors into MLflow), written in the **same
 * transaction** as the data it mirrors. The store does not interpret it: `kind` names it for the
 * consumer and `payload` must be JSON-safe (it is stored as JSON).
 */
export interface OutboxItemInput {
  kind: string;
  payload: unknown;
}

/** Outbox entries to write with a call, in order, after its data (same transaction). */
export interface OutboxWrite {
  outbox?: readonly OutboxItemInput[];
}

/** A stored outbox entry. `id` orders a job's entries (and is unique across jobs). */
export interface StoredOutboxItem {
  id: number;
  jobId: string;
  kind: string;
  /** The producer's payload; `null` for a batch-block reference. */
  payload: unknown;
  /**
   * For an entry written by {@link Store.appendBatchBlocks} with `outboxKind`: the block it stands
   * for, read when the entry is read (its points are never copied into the outbox). Absent when the
   * block no longer exists.
   */
  block?: BatchBlock & { receivedAtMs: number };
  blockId?: number;
  createdAtMs: number;
  attempts: number;
  nextAttemptAtMs: number;
  lastError: string | null;
  parkedError: string | null;
}

/**
 * Who claims a job's outbox, when, and for how long: `owner` is the claiming sidecar's instance id;
 * the claim holds until `nowMs + leaseMs` unless renewed.
 */
export interface OutboxClaimTerms {
  owner: string;
  nowMs: number;
  leaseMs: number;
}

/** A job's outbox at a glance. */
export interface OutboxStatus {
  pendingItems: number;
  /** When the oldest pending entry was written (ms); absent when none. */
  oldestCreatedAtMs?: number;
  /** The first parked entry's error; empty when none. */
  parkedError: string;
}

/** Whole-store counts for monitoring (Prometheus gauges): cheap aggregate queries, no per-job rows. */
export interface OperationalCounts {
  jobsByStatus: Record<JobStatus, number>;
  /** Outbox entries not yet delivered to MLflow (parked ones included). */
  outboxPending: number;
  /** When the oldest undelivered entry was written (ms); absent when the outbox is empty. */
  outboxOldestCreatedAtMs?: number;
  /** Jobs whose MLflow sync is parked (stopped until RetryMlflowSync or a restart). */
  parkedJobs: number;
  /** Outbox entries of parked jobs: they wait for a retry and are not sent before. */
  outboxParkedItems: number;
}

/** What a mirror remembers about a job (kept in the job row: ids, artifact root, metric-key map). */
export interface MirrorState {
  experimentId?: string;
  runId?: string;
  artifactUri?: string;
  metricKeys?: Record<string, string>;
}

/** What {@link Store.createOrGetJob} takes: the fields BeginTraining sets. */
export type NewJob = Omit<
  JobRecord,
  | 'createdAt'
  | 'updatedAt'
  | 'epochsReported'
  | 'bestEpoch'
  | 'bestValue'
  | 'finalMetrics'
  | 'finalPrimaryValue'
  | 'finalAccuracy'
  | 'errorMessage'
  | 'clientLosses'
  | 'mlflowExperimentId'
  | 'mlflowRunId'
  | 'endedAt'
  | 'status'
  | 'runName'
  | 'tags'
  | 'endCause'
  | 'endReason'
  | 'lastSeenAt'
  | 'leaseExpiresAt'
  | 'trainer'
> &
  /** Default: no run name asked for, no extra tags. */
  Partial<Pick<JobRecord, 'runName' | 'tags' | 'trainer'>> & {
    /** Starts the job's lease: lastSeenAt = now, leaseExpiresAt = now + leaseMs. Default: no lease. */
    leaseMs?: number;
  };

/** What a resume changes (see {@link Store.reopenJob}); absent fields keep their stored value. */
export interface ReopenJobChanges {
  startEpoch: number;
  modelConfig?: Record<string, unknown>;
  trainingConfig?: Record<string, unknown>;
  params?: Record<string, string>;
  runName?: string;
  tags?: Record<string, string>;
  customMetrics?: CustomMetricDefinition[];
  /** The trainer of this BeginTraining (null: none sent); absent keeps the stored one. */
  trainer?: TrainerRecord | null;
  /** Starts a fresh lease (as in NewJob.leaseMs). */
  leaseMs?: number;
  /** Outbox entries written in the same transaction. */
  outbox?: readonly OutboxItemInput[];
  /**
   * The job's state the caller decided on: the resume happens only while the job still has this
   * status and end cause (read under the row's lock), else StoreError `conflict` and nothing changes —
   * two BeginTraining racing on two sidecars, or a resume racing an end, cannot both act on a state
   * one of them has changed. Absent: unconditional.
   */
  from?: Pick<JobRecord, 'status' | 'endCause'>;
}

/** What {@link Store.renewLease} did. */
export interface LeaseRenewal {
  /** The job after the call. */
  job: JobRecord;
  /** The job was running and its lease now runs until `job.leaseExpiresAt`. */
  renewed: boolean;
  /** The job was lost and the session was its trainer's: it runs again. */
  revived: boolean;
}

/** Options of {@link Store.renewLease}. */
export interface RenewLeaseOptions {
  leaseMs: number;
  /** Now, in ms (the sign of life's time). */
  nowMs: number;
  /** The caller's client session: with the job's, a lost job is revived. Empty: renewal only. */
  sessionId?: string;
  /**
   * The outbox entries of a revival (the MLflow run runs again), from the verdict it revises
   * (`end_reason` before the revival); written in the revival's transaction.
   */
  revive?: (lostReason: string) => readonly OutboxItemInput[];
}

/** A lost job, as {@link Store.expireLeases} hands it to its builder. */
export interface ExpiredLease {
  jobId: string;
  /** The last sign of life (ms); the lease's start when the job never gave one. */
  lastSeenAtMs: number;
  leaseExpiresAtMs: number;
}

/** What {@link Store.expireLeases} writes for a lost job: the verdict's sentence and outbox entries. */
export interface LeaseVerdict {
  reason: string;
  outbox?: readonly OutboxItemInput[];
}

/** Input of {@link Store.endLostJob}: a verdict from process evidence. */
export interface LostJobInput {
  jobId: string;
  /** Ends the job only while its stored trainer is still this one (pid, start time, boot id). */
  trainer: Pick<TrainerRecord, 'pid' | 'startTimeTicks' | 'bootId'>;
  reason: string;
  /** When the process was seen gone: the job's end time (and its MLflow run's). */
  endedAt: Date;
  outbox?: readonly OutboxItemInput[];
}

/** Query of {@link Store.listJobs}. */
export interface ListJobsQuery {
  status?: JobStatus;
  task?: string;
  /** Page size, at least 1. */
  limit: number;
  /** `nextCursor` of the previous page. */
  cursor?: string;
}

/** One page of {@link Store.listJobs}. */
export interface ListJobsPage {
  jobs: JobRecord[];
  /** Present when more jobs follow. */
  nextCursor?: string;
  /** The cursor after each job of the page (for a caller that returns fewer jobs than it read). */
  cursors: string[];
}

/** A stored epoch. */
export interface EpochRecord {
  jobId: string;
  epoch: number;
  /** Every metric as reported, NaN and ±Infinity included. */
  metrics: Record<string, number>;
  /** Names of the metrics whose value is NaN or ±Infinity, in name order. */
  nonFinite: string[];
  /** The loss column: absent when not reported or not finite (then see `metrics`). */
  loss?: number;
  /** The accuracy column: absent when not reported or not finite. */
  accuracy?: number;
  /** The learning-rate column: absent when not reported or not finite. */
  learningRate?: number;
  timestamp: Date;
  /** When BeginEpoch was recorded for this epoch, if it was. */
  beganAt?: Date;
}

/** Input of {@link Store.saveEpoch}. */
export interface SaveEpochInput {
  jobId: string;
  epoch: number;
  /** Every metric of the epoch; stored faithfully (NaN/±Infinity included). */
  metrics: Record<string, number>;
  /** Values for the denormalised columns; normally copies of entries of `metrics`. */
  columns: { loss?: number; accuracy?: number; learningRate?: number };
  timestamp: Date;
  /**
   * The job's best epoch after this one: a rule, decided inside the epoch's transaction from the
   * job's stored best (the caller's rule — the catalog's direction —, the database's facts); or the
   * value itself (null: none), when the caller alone writes the job.
   */
  best: BestEpochRule | BestEpoch | null;
  /**
   * Outbox entries written in the same transaction. Not written when the epoch was already stored
   * with exactly these metrics (a resent report changes nothing, so there is nothing new to mirror).
   */
  outbox?: readonly OutboxItemInput[];
  /**
   * Metric renames and unit changes to record once per job (whichever sidecar sees one first), with
   * the outbox item of those that were new, queued ahead of `outbox`.
   */
  metricSources?: MetricSourcesWrite;
}

/** An epoch and its finite primary value. */
export interface BestEpoch {
  epoch: number;
  value: number;
}

/**
 * Picks the job's best epoch once an epoch is reported. `incumbent` is the stored best (null: none
 * yet); `otherEpochs()` reads every other reported epoch's finite primary value, for when the
 * incumbent itself is re-reported or there is none. Called inside the write transaction, or (PostgreSQL,
 * a job the store reported before) before one autocommitted write that holds only while the facts it
 * was given still do — else it is called again inside the transaction: keep it free of side effects.
 */
export type BestEpochRule = (
  incumbent: BestEpoch | null,
  otherEpochs: () => Promise<ReadonlyMap<number, number>>,
) => BestEpoch | null | Promise<BestEpoch | null>;

/** What {@link Store.saveEpoch} stored, as of its commit. */
export interface SavedEpoch {
  /** The job's best epoch now (null: none). */
  best: BestEpoch | null;
  /** Distinct epochs reported, this one included. */
  epochsReported: number;
  /** The epoch was not reported before. */
  isNew: boolean;
}

/** A block of batch-level points: `values[row * names.length + col]` is `names[col]` at `steps[row]`. */
export interface BatchBlock {
  epoch: number;
  names: string[];
  steps: BigInt64Array;
  values: Float64Array;
}

/** What {@link Store.appendBatchBlocks} did besides storing new points. */
export interface BatchAppendResult {
  /** Points that were stored already with the same value and epoch (left as they were). */
  unchangedPoints: number;
  /** Stored points replaced by one of the same name and step with another value or epoch. */
  replacedPoints: number;
}

/** A page of {@link Store.listEpochs}: epochs after `afterEpoch`, at most `limit`. */
export interface EpochPage {
  afterEpoch?: number;
  limit?: number;
}

/** A batch block as listed: its place in the listing order (smallest step, then id). */
export interface ListedBatchBlock extends BatchBlock {
  id: number;
  firstStep: bigint;
}

/** A page of {@link Store.listBatchBlocks}: from the block at `after` (included), at most `limit` blocks. */
export interface BatchBlockPage {
  after?: { firstStep: bigint; id: number };
  limit?: number;
}

/** An artifact as listed: `id` orders the listing (logging order). */
export interface ListedArtifact extends ArtifactRecord {
  id: number;
}

/**
 * A page of {@link Store.listArtifacts}: artifacts after `afterId`, at most `limit`; with
 * `artifactPath`, only the artifact of that path (one row at most, by the job's unique path index).
 */
export interface ArtifactPage {
  afterId?: number;
  limit?: number;
  artifactPath?: string;
}

/** Input of {@link Store.endJob}. */
export interface EndJobInput {
  jobId: string;
  status: Exclude<JobStatus, 'running'>;
  finalMetrics: Record<string, number>;
  /** Absent: the job's best value as stored when it ends (read in the end's transaction). */
  finalPrimaryValue?: number;
  /** Absent: the job's best value when accuracy is its primary metric, else none. */
  finalAccuracy?: number;
  errorMessage: string;
  /**
   * What the client could not deliver; absent when nothing. As a function, built from what the job
   * holds (a resumed job's earlier runs), read in the end's transaction.
   */
  clientLosses?:
    | ClientLossesRecord
    | ((stored: ClientLossesRecord | undefined) => ClientLossesRecord | undefined);
  endedAt: Date;
  /**
   * Outbox entries written in the same transaction; as a function, built from the job as the end's
   * transaction reads it (its start epoch and highest reported epoch, whichever sidecar stored it).
   */
  outbox?: readonly OutboxItemInput[] | ((job: EndingJob) => readonly OutboxItemInput[]);
}

/** What {@link EndJobInput.outbox} is told of the job it ends. */
export interface EndingJob {
  startEpoch: number;
  /** The highest reported epoch; undefined when none was reported. */
  lastEpoch: number | undefined;
}

/** A stored artifact. */
export interface ArtifactRecord {
  /** Destination path inside the run's artifacts; unique per job. */
  artifactPath: string;
  sizeBytes: number;
  sha256: string;
  sourcePath: string;
  storedPath: string;
  loggedAt: Date;
}

/** A rename or unit change of a job's metric, as the mirror records it in the run. */
export interface MetricSourceRecord {
  /** The metric's name in the mirror. */
  name: string;
  /** The name the trainer reported. */
  reported: string;
  /** The unit factor applied (0.01: reported in percent, stored as a fraction). */
  scale: number;
}

/**
 * Metric sources to record with a write, each once per job: the table's uniqueness decides which are
 * new (whichever sidecar saw one first records it); `item` builds the outbox entry of the new ones,
 * written only when there are any.
 */
export interface MetricSourcesWrite {
  sources: readonly MetricSourceRecord[];
  item(added: MetricSourceRecord[]): OutboxItemInput;
}

/** A job as stored, for {@link Store.replaceOutbox}. */
export interface JobSnapshot {
  job: JobRecord;
  epochs: EpochRecord[];
  /** Every metric source recorded for the job, in the order recorded. */
  metricSources: MetricSourceRecord[];
  artifacts: Array<Pick<ArtifactRecord, 'artifactPath' | 'storedPath' | 'sizeBytes' | 'sha256'>>;
}

/**
 * What a committed write changed, as recorded in the change feed (one row per write and item, in the
 * write's own transaction):
 * - `job`: the job was created, resumed or ended (its row changed);
 * - `epoch`: an epoch was reported (`ref` = the epoch number); the job's counters and best changed too;
 * - `batch`: a batch block was stored or replaced (`ref` = the block id);
 * - `artifact`: an artifact was stored or replaced (`ref` = the artifact id);
 * - `mlflow`: the job's MLflow sync state changed (run created, items delivered, parked, retried).
 */
export type ChangeKind = 'job' | 'epoch' | 'batch' | 'artifact' | 'mlflow';

/** One entry of the change feed. `seq` increases in commit order. */
export interface ChangeRecord {
  seq: number;
  jobId: string;
  kind: ChangeKind;
  /** See {@link ChangeKind}; null for `job` and `mlflow`. */
  ref: number | null;
}

/** Query of {@link Store.readChanges}. */
export interface ChangesQuery {
  /** Only changes with a larger seq. */
  afterSeq: number;
  /** Only this job's changes. */
  jobId?: string;
  /** At most this many (bounded pages keep a slow reader's memory bounded). */
  limit: number;
}

/**
 * A place in the feed counted in rows, for {@link Store.changeSeqAt}: the `rows`-th row after
 * `afterSeq`, or the `rows`-th newest row.
 */
export type ChangePosition = { afterSeq: number; rows: number } | { fromHead: true; rows: number };

/** A batch block with its row id (what a `batch` change refers to). */
export interface StoredBatchBlock extends BatchBlock {
  id: number;
  jobId: string;
}

/** A stored artifact with its row id (what an `artifact` change refers to). */
export interface StoredArtifact extends ArtifactRecord {
  id: number;
  jobId: string;
}

/** The store: every method runs in its own short transaction on a fresh `em.fork()`. */
export interface Store {
  /**
   * Inserts the job, or returns the existing one untouched with created=false (the caller decides
   * about resume; a resume then calls {@link Store.reopenJob}). `options.outbox` is written only
   * when the job is created.
   */
  createOrGetJob(job: NewJob, options?: OutboxWrite): Promise<{ job: JobRecord; created: boolean }>;
  /**
   * Resume: sets startEpoch and the given configs, status back to running, endedAt cleared;
   * conditional on `changes.from` (StoreError `conflict` when the job changed since it was read).
   */
  reopenJob(jobId: string, changes: ReopenJobChanges): Promise<JobRecord>;
  getJob(jobId: string): Promise<JobRecord | undefined>;
  /** Newest first (createdAt desc, jobId desc as tiebreak), with an opaque keyset cursor. */
  listJobs(query: ListJobsQuery): Promise<ListJobsPage>;
  /** Records when an epoch began; keeps the epoch's metrics if it was already reported. */
  beginEpoch(jobId: string, epoch: number, at: Date): Promise<void>;
  /**
   * Replaces that epoch's metrics and sets the job's best, epochsReported and updatedAt, in one
   * transaction.
   */
  saveEpoch(input: SaveEpochInput): Promise<SavedEpoch>;
  /** The reported epochs, in epoch order (one page of them with `page`). */
  listEpochs(jobId: string, page?: EpochPage): Promise<EpochRecord[]>;
  /**
   * Stores blocks in one transaction. A point is (name, step) within the job and is stored once:
   * a point sent again with the same value and epoch changes nothing, one with another value or
   * epoch replaces the stored one (last write wins), however the blocks were cut; inside one call
   * the last occurrence wins. See batch-points.ts. The job must be running, read under its row's
   * lock in the same transaction (StoreError `ended` otherwise, nothing stored).
   */
  appendBatchBlocks(
    jobId: string,
    blocks: readonly BatchBlock[],
    options?: {
      /**
       * Writes one outbox entry of this kind per block written (no copy of its points). Points that
       * were stored already with the same value get none: they were, or will be, mirrored once.
       */
      outboxKind?: string;
      /** Renames and unit changes to record once each, ahead of the blocks' entries. */
      metricSources?: MetricSourcesWrite;
      /** When the blocks were received (ms); points stored unchanged keep theirs. Default: now. */
      receivedAtMs?: number;
    },
  ): Promise<BatchAppendResult>;
  /**
   * The job's blocks (of one epoch, if given), in step order: by smallest step, then id (one page of
   * them with `page`).
   */
  listBatchBlocks(jobId: string, epoch?: number, page?: BatchBlockPage): Promise<ListedBatchBlock[]>;
  /**
   * Ends a running job: status, final metrics, error message, endedAt; cause 'reported', no lease.
   * Conditional, under the job row's lock: a job that is no longer running (ended by another call or
   * sidecar, or a verdict) is StoreError `ended` and nothing changes; NOT_FOUND for an unknown job.
   */
  endJob(input: EndJobInput): Promise<JobRecord>;

  // Leases and verdicts (docs/verdicts.md). Every change is a conditional UPDATE, so that several
  // sidecars sharing the database agree on the outcome without any per-job truth in memory.

  /**
   * A sign of life of the job's trainer: renews a running job's lease; revives a lost job when
   * `sessionId` is its trainer's session (status running, cause and reason cleared, a fresh lease,
   * a `job` change, `reviveOutbox` written). Otherwise changes nothing. NOT_FOUND for an unknown job.
   */
  renewLease(jobId: string, options: RenewLeaseOptions): Promise<LeaseRenewal>;
  /**
   * Ends, FAILED with cause 'lease_expired', every running job whose lease ran out before `nowMs`
   * (at most `limit`), each in its own transaction with the reason and outbox `verdict` makes of it
   * (called between the scan and the conditional UPDATE); its end time is its last sign of life. A job
   * renewed or ended meanwhile (by this store or another sharing the database) is left alone. Returns
   * the jobs ended.
   */
  expireLeases(
    nowMs: number,
    limit: number,
    verdict: (job: ExpiredLease) => LeaseVerdict | Promise<LeaseVerdict>,
  ): Promise<JobRecord[]>;
  /**
   * Ends a running job FAILED with cause 'process_exited', only while its trainer is still the given
   * process; undefined when it was not (ended, resumed by another process, unknown).
   */
  endLostJob(input: LostJobInput): Promise<JobRecord | undefined>;
  /**
   * Gives every running job a lease until at least `untilMs` (at start-up: while no sidecar ran, no
   * trainer could renew its lease). Returns the jobs changed.
   */
  extendLeases(untilMs: number): Promise<number>;
  /** Running jobs whose trainer process is on the kernel `bootId` (to watch, e.g. after a restart). */
  runningTrainers(bootId: string): Promise<Array<{ jobId: string; trainer: TrainerRecord }>>;
  /** Upserts by artifactPath; the job must be running, as for appendBatchBlocks (else `ended`). */
  putArtifacts(jobId: string, artifacts: readonly ArtifactRecord[], options?: OutboxWrite): Promise<void>;
  /** The job's artifacts in the order they were first logged (one page of them with `page`). */
  listArtifacts(jobId: string, page?: ArtifactPage): Promise<ListedArtifact[]>;
  setMlflowIds(jobId: string, experimentId: string, runId: string): Promise<void>;

  // The durable outbox. Entries are written with the data they mirror (see `outbox` above); a
  // consumer drains them in id order per job. Every method is one short statement or transaction.

  /** Appends entries for a job outside any other write (tests, tools). */
  enqueueOutbox(jobId: string, items: readonly OutboxItemInput[], nowMs: number): Promise<void>;
  /** Jobs whose first entry is not parked and is due at `nowMs`, oldest due first, at most `limit`. */
  outboxDueJobs(nowMs: number, limit: number): Promise<string[]>;
  /**
   * A job's first `limit` entries by id, block references resolved. Stops after the entry whose
   * blocks bring the resolved points to `maxBlockPoints` (default unlimited), so a peek never reads
   * more points than its caller can use.
   */
  peekOutbox(jobId: string, limit: number, maxBlockPoints?: number): Promise<StoredOutboxItem[]>;
  /** Deletes delivered entries. */
  completeOutbox(ids: readonly number[]): Promise<void>;
  /** Records a retryable failure of an entry. */
  rescheduleOutboxItem(
    id: number,
    update: { attempts: number; nextAttemptAtMs: number; lastError: string },
  ): Promise<void>;
  /** Stops the entry's job queue with an error. */
  parkOutboxItem(id: number, error: string): Promise<void>;
  /**
   * "Retry now" for a job (every job when `jobId` is undefined): clears parked errors and ends the wait
   * between retries, so every such entry is due at `nowMs`. Returns the entries changed.
   */
  retryOutboxNow(jobId: string | undefined, nowMs: number): Promise<number>;
  /**
   * The earliest next attempt over the first entries of jobs that are not parked; with `claims`, of
   * those jobs only that no other owner holds a live claim on.
   */
  outboxNextDueAtMs(claims?: { owner: string; nowMs: number }): Promise<number | undefined>;
  /**
   * Claims the outboxes of up to `limit` due jobs (as {@link outboxDueJobs}) that no other owner
   * holds, for `terms.owner` until `nowMs + leaseMs`; returns the jobs claimed, oldest due first. A
   * job is held by one owner at a time: the claim is one conditional write that takes a job only
   * when it has no claim, its claim ran out or the owner holds it already. Sidecars sharing a database
   * drain a job only while they hold its claim, so each job's outbox is drained in order by one of them.
   */
  claimOutboxJobs(terms: OutboxClaimTerms, limit: number): Promise<string[]>;
  /** Extends the owner's claims on `jobIds` to `nowMs + leaseMs`; returns the jobs it still holds. */
  renewOutboxClaims(terms: OutboxClaimTerms, jobIds: readonly string[]): Promise<string[]>;
  /**
   * Gives up claims: the owner's claims on `jobIds` (every claim of the owner when `jobIds` is
   * undefined); with `owner` undefined, everyone's — for a sidecar that holds the database alone
   * (SQLite's lock) and so knows that earlier runs' claims are stale.
   */
  releaseOutboxClaims(owner: string | undefined, jobIds?: readonly string[]): Promise<void>;
  /**
   * Gives up the owner's claims on those of `jobIds` with nothing to send (no entry left, or a parked
   * head); claims on jobs that wait out a backoff are kept. Returns the jobs released.
   */
  releaseIdleOutboxClaims(owner: string, jobIds: readonly string[]): Promise<string[]>;
  /** Per job: pending entries, oldest, parked/last error. Jobs without entries are absent. */
  outboxStatus(jobIds: readonly string[]): Promise<Map<string, OutboxStatus>>;
  /** Jobs by status, outbox depth and oldest entry, parked jobs: aggregates for monitoring. */
  operationalCounts(): Promise<OperationalCounts>;
  /** The mirror's state of a job (undefined for an unknown job). */
  getMirrorState(jobId: string): Promise<MirrorState | undefined>;
  /** Saves the mirror's state (ids, artifact root, metric keys) into the job row; updatedAt is left alone. */
  saveMirrorState(jobId: string, state: MirrorState): Promise<void>;
  /**
   * Replaces a job's outbox with a full copy of the job (a re-mirror into a new run), in one
   * transaction: drops the job's pending entries, forgets its mirror state, and appends what `build`
   * makes of the job as stored — `before`, one entry of kind `blockKind` per stored batch block (in
   * the order they were stored), then `after`. NOT_FOUND for an unknown job.
   */
  replaceOutbox(
    jobId: string,
    build: (job: JobSnapshot) => { before: OutboxItemInput[]; blockKind: string; after: OutboxItemInput[] },
    nowMs: number,
  ): Promise<{ dropped: number; queued: number; job: JobRecord }>;

  // The change feed (see ChangeKind): what the watch streams read. Every write above appends to it in
  // its own transaction, so the feed and the data never disagree.
  /** Changes after `afterSeq` in seq order, at most `limit`. */
  readChanges(query: ChangesQuery): Promise<ChangeRecord[]>;
  /**
   * The seq a reader starting now resumes after, missing nothing that follows: the largest committed
   * seq (0 when the feed is empty). Seqs increase but are not consecutive: on PostgreSQL they follow
   * the writing transactions (see HotPath.changesAfter), so count rows with {@link changeSeqAt}.
   */
  headSeq(): Promise<number>;
  /** The smallest seq still in the feed (0 when it is empty). */
  firstSeq(): Promise<number>;
  /** The seq of a row counted from a seq or from the head; undefined when the feed has fewer rows. */
  changeSeqAt(at: ChangePosition): Promise<number | undefined>;
  /**
   * Compacts the feed between `fromSeq` (inclusive) and `toSeq` (exclusive): deletes the rows that
   * tell a reader nothing a later row does not — a later row of the same job, kind and ref exists (a
   * job changed again, an epoch resent, a block rewritten) — and rows whose block or artifact is gone.
   * A reader resuming from any seq still gets every item changed after it, at its latest state (the
   * watch streams send current state, coalesced), so compaction never makes a reader re-list. What
   * is left is at most one row per job and kind and one per epoch, block and artifact: the feed grows
   * with the data it describes, not with every write. One short write transaction; returns the rows
   * deleted. Callers walk the feed in ranges of a few thousand rows (see {@link changeSeqAt}).
   */
  compactChanges(range: { fromSeq: number; toSeq: number }): Promise<number>;
  /**
   * Calls `listener` after every commit of this store that appended to the feed, with the job it
   * changed (undefined: several); the listener reads the feed itself. Returns the function that removes it.
   */
  onCommit(listener: (jobId: string | undefined) => void): () => void;
  /** One reported epoch (undefined when absent or only begun). */
  getEpoch(jobId: string, epoch: number): Promise<EpochRecord | undefined>;
  /** A batch block by id (undefined when it no longer exists). */
  getBatchBlock(id: number): Promise<StoredBatchBlock | undefined>;
  /**
   * A page of the job's batch blocks that overlap [minStep, maxStep] (either bound optional), in id
   * order after `afterId`: what a reader walks to aggregate a long series in bounded memory. The
   * steps and values may be views of the stored bytes: read them, don't write them.
   */
  readBatchBlocks(
    jobId: string,
    query: { afterId: number; limit: number; minStep?: bigint; maxStep?: bigint },
  ): Promise<StoredBatchBlock[]>;
  /** The first and last step of the job's batch blocks; undefined when it has none. */
  batchStepRange(jobId: string): Promise<{ first: bigint; last: bigint } | undefined>;
  /** An artifact by id (undefined when it no longer exists). */
  getArtifact(id: number): Promise<StoredArtifact | undefined>;

  /** Closes the database; the store is unusable afterwards. */
  /**
   * The cheapest write that really commits (it rewrites the database header with this store's
   * application id, a no-op for the data): throws while the database cannot be written (full disk,
   * read-only, locked, damaged). For health checks.
   */
  probeWrite(): Promise<void>;
  close(): Promise<void>;
}
