// The public types of the store. Records are plain objects: no ORM entity leaves the package.

/** Where a job is in its life. */
export type JobStatus = 'running' | 'completed' | 'failed' | 'cancelled';

/** Which database the store runs on. Only 'sqlite' exists today; 'postgresql' is the planned second. */
export type StoreDialect = 'sqlite';

/** Options of {@link openStore}. */
export interface StoreOptions {
  /** SQLite file path (its parent directory is created if missing), or ':memory:'. */
  dbPath: string;
  /**
   * 'normal' (default): a commit survives a crash of the process (WAL, synchronous=NORMAL); a power
   * loss may lose the last commits. 'full': synchronous=FULL, a commit also survives a power loss,
   * at the cost of an fsync per commit.
   */
  durability?: 'normal' | 'full';
  /** Log every SQL statement through MikroORM's logger. */
  debug?: boolean;
  /** The database dialect; defaults to 'sqlite'. The seam for a later 'postgresql'. */
  dialect?: StoreDialect;
}

/** Definition of a custom metric, for display and best-epoch direction. */
export interface CustomMetricDefinition {
  name: string;
  label: string;
  format: 'percent' | 'float' | 'int';
  higherIsBetter: boolean;
  description: string;
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
  /** Empty until the MLflow bridge mirrors the job. */
  mlflowExperimentId: string;
  /** Empty until the MLflow bridge mirrors the job. */
  mlflowRunId: string;
  createdAt: Date;
  updatedAt: Date;
  endedAt?: Date;
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
  | 'mlflowExperimentId'
  | 'mlflowRunId'
  | 'endedAt'
  | 'status'
>;

/** What a resume changes (see {@link Store.reopenJob}); absent fields keep their stored value. */
export interface ReopenJobChanges {
  startEpoch: number;
  modelConfig?: Record<string, unknown>;
  trainingConfig?: Record<string, unknown>;
  params?: Record<string, string>;
  customMetrics?: CustomMetricDefinition[];
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
  /** The job's best epoch after this one (computed by the caller), or null before any finite value. */
  best: { epoch: number; value: number } | null;
}

/** A block of batch-level points: `values[row * names.length + col]` is `names[col]` at `steps[row]`. */
export interface BatchBlock {
  epoch: number;
  names: string[];
  steps: BigInt64Array;
  values: Float64Array;
}

/** Input of {@link Store.endJob}. */
export interface EndJobInput {
  jobId: string;
  status: Exclude<JobStatus, 'running'>;
  finalMetrics: Record<string, number>;
  finalPrimaryValue?: number;
  finalAccuracy?: number;
  errorMessage: string;
  endedAt: Date;
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

/** The store: every method runs in its own short transaction on a fresh `em.fork()`. */
export interface Store {
  /**
   * Inserts the job, or returns the existing one untouched with created=false (the caller decides
   * about resume; a resume then calls {@link Store.reopenJob}).
   */
  createOrGetJob(job: NewJob): Promise<{ job: JobRecord; created: boolean }>;
  /** Resume: sets startEpoch and the given configs, status back to running, endedAt cleared. */
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
  saveEpoch(input: SaveEpochInput): Promise<void>;
  /** The reported epochs, in epoch order. */
  listEpochs(jobId: string): Promise<EpochRecord[]>;
  /** Stores blocks in one transaction; a block resent with the same (epoch, first step, names) replaces the earlier one. */
  appendBatchBlocks(jobId: string, blocks: readonly BatchBlock[]): Promise<void>;
  /** The job's blocks (of one epoch, if given), in step order. */
  listBatchBlocks(jobId: string, epoch?: number): Promise<BatchBlock[]>;
  /** Ends the job: status, final metrics, error message, endedAt. */
  endJob(input: EndJobInput): Promise<JobRecord>;
  /** Upserts by artifactPath. */
  putArtifacts(jobId: string, artifacts: readonly ArtifactRecord[]): Promise<void>;
  /** The job's artifacts, in artifactPath order. */
  listArtifacts(jobId: string): Promise<ArtifactRecord[]>;
  setMlflowIds(jobId: string, experimentId: string, runId: string): Promise<void>;
  /** Closes the database; the store is unusable afterwards. */
  close(): Promise<void>;
}
