import type { MirrorState } from '@training-callbacks/store';
import { encodeNonFinite, type JsonNumber } from '@training-callbacks/store/number-codec';
import type { RunStatus } from './client.ts';

/**
 * The durable outbox the sync worker drains. Everything is JSON-safe (non-finite numbers are the strings
 * "NaN"/"Infinity"/"-Infinity", see `encodeNonFinite` in the store's number codec), so a payload can be stored as one TEXT column.
 *
 * One SQL table is enough for the items:
 *   mlflow_outbox(id INTEGER PRIMARY KEY AUTOINCREMENT, job_id TEXT, kind TEXT, payload TEXT,
 *                 created_at_ms INTEGER, attempts INTEGER DEFAULT 0, next_attempt_at_ms INTEGER,
 *                 last_error TEXT NULL, parked_error TEXT NULL)   + INDEX (job_id, id)
 * and the per-job mirror state (`MlflowJobMirror`) fits in columns of the job row
 * (mlflow_run_id, mlflow_experiment_id, mlflow_metric_keys JSON).
 */

/** Sent once per BeginTraining (again on resume): experiment + run get-or-create, tags, params. */
export interface JobBegunPayload {
  task: string;
  framework: string;
  modelName: string;
  /** Flat params, mirrored as run params (write-once in MLflow). */
  params: Record<string, string>;
  /** Extra run tags. */
  tags?: Record<string, string>;
  /** When the job was first begun (ms); the run's start_time. */
  startTimeMs: number;
  /** Run name; default `job_<jobId>`. */
  runName?: string;
  /**
   * A re-mirror's begin (the whole job follows): the job's stored mirror state is ignored and its run
   * is looked for by its job-id tag — filled up when it is still there, created when it is gone.
   */
  remirror?: boolean;
}

/** One EndEpoch: metrics at step = epoch. */
export interface EpochMetricsPayload {
  epoch: number;
  /** Reported (catalog) name → value. */
  metrics: Record<string, JsonNumber>;
  /** Fixed when the sidecar received the epoch, so a resend is identical (MLflow drops exact duplicates). */
  timestampMs: number;
}

/** Batch-level points at step = global step: `values[row * names.length + column]`, row `i` at `steps[i]`. */
export interface BatchMetricsPayload {
  epoch: number;
  names: string[];
  steps: number[];
  values: JsonNumber[];
  timestampMs: number;
}

/** EndTraining's final metrics, logged as `final_<name>`. */
export interface FinalMetricsPayload {
  metrics: Record<string, JsonNumber>;
  /** Usually the last epoch. */
  step: number;
  timestampMs: number;
}

/** The run's end. Enqueued after everything else of the job. */
export interface JobEndedPayload {
  status: Extract<RunStatus, 'FINISHED' | 'FAILED' | 'KILLED'>;
  endTimeMs: number;
  /** For FAILED: written to the run as tag `training_callbacks.error`. */
  errorMessage?: string;
  /**
   * For a job the sidecar declared lost (the trainer died or went silent): the verdict ("lost: …"),
   * written to the run as tag `training_callbacks.end_cause`; `endTimeMs` is the last sign of life.
   */
  endCause?: string;
}

/**
 * A lost job runs again (its trainer came back): the run is RUNNING again, and the tag
 * `training_callbacks.end_cause` says it was revived and from what. Its later end comes as job_ended.
 */
export interface JobRevivedPayload {
  /** The tag's new value, e.g. "revived at 2026-12-02T06:12:00.000Z after: lost: …". */
  endCause: string;
}

/**
 * What the trainer reported behind metric names that the producer renamed or rescaled: recorded in the
 * run as tags (`training_callbacks.reported_as.<key>`, `training_callbacks.unit.<key>`), where an MLflow
 * user sees them on the run page and can search them.
 */
export interface MetricSourcesPayload {
  sources: Array<{
    /** The name metric items carry (the MLflow key is made from it). */
    name: string;
    /** The name the trainer reported. */
    reported: string;
    /** Unit factor applied to the reported values (0.01: percent → fraction); 1 when none. */
    scale: number;
  }>;
}

/** A file the sidecar stored; uploaded to `<run artifacts>/<artifactPath>`. */
export interface ArtifactPayload {
  /** Where the sidecar keeps the file (must stay readable until the item is delivered). */
  filePath: string;
  /** Destination inside the run's artifacts, e.g. `weights/best.pt`. */
  artifactPath: string;
  sizeBytes?: number;
  sha256?: string;
}

export interface OutboxPayloads {
  job_begun: JobBegunPayload;
  epoch_metrics: EpochMetricsPayload;
  batch_metrics: BatchMetricsPayload;
  final_metrics: FinalMetricsPayload;
  job_ended: JobEndedPayload;
  job_revived: JobRevivedPayload;
  artifact: ArtifactPayload;
  metric_sources: MetricSourcesPayload;
}
export type OutboxItemKind = keyof OutboxPayloads;

/** An item to append: `{ kind, payload }` with the payload matching the kind. */
export type NewOutboxItem = {
  [K in OutboxItemKind]: { kind: K; payload: OutboxPayloads[K] };
}[OutboxItemKind];

/** A stored item. `id` orders the items of a job (and is unique across jobs). */
export type OutboxItem = NewOutboxItem & {
  id: number;
  jobId: string;
  createdAtMs: number;
  /** Failed attempts so far. */
  attempts: number;
  /** Not to be tried before this time. */
  nextAttemptAtMs: number;
  /** The last retryable failure, for status displays. */
  lastError: string | null;
  /** Set when a non-retryable failure stopped this job's sync; cleared by `retryNow`. */
  parkedError: string | null;
};

/**
 * What the worker remembers about a job's mirror: the store's `MirrorState`, kept in the job row
 * (`metricKeys`, reported metric name → MLflow key, see `MetricKeyMap`, is order-dependent, so it must
 * be kept).
 */
export type MlflowJobMirror = MirrorState;

export interface MlflowOutbox {
  /**
   * Appends items to a job's queue in order. The store will rather insert rows in the same transaction as
   * the data they mirror; this method is for callers without such a transaction (and for tests).
   */
  enqueue(jobId: string, items: readonly NewOutboxItem[], nowMs: number): Promise<void>;
  /**
   * Jobs whose first item (lowest id) is not parked and has `nextAttemptAtMs <= nowMs`, at most `limit`,
   * the job with the oldest such head first.
   */
  dueJobs(nowMs: number, limit: number): Promise<string[]>;
  /** The first `limit` items of a job, by id. */
  peek(jobId: string, limit: number): Promise<OutboxItem[]>;
  /** Deletes delivered items. */
  complete(ids: readonly number[]): Promise<void>;
  /** Records a retryable failure of an item. */
  reschedule(
    id: number,
    update: { attempts: number; nextAttemptAtMs: number; lastError: string },
  ): Promise<void>;
  /** Stops a job's sync at this item with a non-retryable error. */
  park(id: number, error: string): Promise<void>;
  /**
   * "Retry now" for a job: clears parked errors (after the cause was fixed) and ends the wait between
   * retries, so those items are due at `nowMs`. Returns the items changed.
   */
  retryNow(jobId: string, nowMs: number): Promise<number>;
  /** Earliest `nextAttemptAtMs` over the heads of jobs that are not parked; undefined when nothing is pending. */
  nextDueAtMs(): Promise<number | undefined>;
  getMirror(jobId: string): Promise<MlflowJobMirror | undefined>;
  saveMirror(jobId: string, mirror: MlflowJobMirror): Promise<void>;
}

/** Builders that make payloads JSON-safe (NaN/±Infinity as MLflow's strings). */
export const outboxItems = {
  jobBegun(payload: JobBegunPayload): NewOutboxItem {
    return { kind: 'job_begun', payload };
  },
  epochMetrics(epoch: number, metrics: Record<string, number>, timestampMs: number): NewOutboxItem {
    return { kind: 'epoch_metrics', payload: { epoch, metrics: mapValues(metrics), timestampMs } };
  },
  batchMetrics(
    epoch: number,
    names: string[],
    steps: number[],
    values: ArrayLike<number>,
    timestampMs: number,
  ): NewOutboxItem {
    if (values.length !== names.length * steps.length) {
      throw new Error(
        `batch metrics: ${values.length} values for ${steps.length} steps × ${names.length} names`,
      );
    }
    return {
      kind: 'batch_metrics',
      payload: { epoch, names, steps, values: Array.from(values, encodeNonFinite), timestampMs },
    };
  },
  finalMetrics(metrics: Record<string, number>, step: number, timestampMs: number): NewOutboxItem {
    return { kind: 'final_metrics', payload: { metrics: mapValues(metrics), step, timestampMs } };
  },
  jobEnded(
    status: JobEndedPayload['status'],
    endTimeMs: number,
    errorMessage?: string,
    endCause?: string,
  ): NewOutboxItem {
    return {
      kind: 'job_ended',
      payload: {
        status,
        endTimeMs,
        ...(errorMessage && { errorMessage }),
        ...(endCause && { endCause }),
      },
    };
  },
  jobRevived(endCause: string): NewOutboxItem {
    return { kind: 'job_revived', payload: { endCause } };
  },
  metricSources(sources: MetricSourcesPayload['sources']): NewOutboxItem {
    return { kind: 'metric_sources', payload: { sources } };
  },
  artifact(
    filePath: string,
    artifactPath: string,
    extra: { sizeBytes?: number; sha256?: string } = {},
  ): NewOutboxItem {
    return { kind: 'artifact', payload: { filePath, artifactPath, ...extra } };
  },
};

function mapValues(m: Record<string, number>): Record<string, JsonNumber> {
  // fromEntries defines each entry; `out[k] = …` on a plain object would drop a metric named __proto__.
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, encodeNonFinite(v)]));
}
