// What the sidecar keeps in memory about the jobs it serves (record, metric classifier), so that a
// report does not read the job back per call. Bounded (least recently used jobs leave).
//
// A cache, never the truth: several sidecars may serve one job, so what is remembered here can be
// stale. Whether a job runs is decided by the store inside each write's transaction (StoreError
// `ended`); the cache only lets a report through to that check. A job remembered as ended is read
// again before anything is refused or answered from it (another sidecar may have resumed it). The
// classifier is derived from the job's task and custom metrics, which change only when BeginTraining
// resumes the job: it is rebuilt whenever a read of the job row (a BeginTraining, a heartbeat, a
// report's lease renewal, at least once per heartbeat interval) shows other custom metrics.
import { RpcError, Status } from '@training-callbacks/grpc-adapter';
import {
  CatalogError,
  createMetricClassifier,
  type MetricClassifier,
  type TaskType,
} from '@training-callbacks/metric-catalog';
import type { JobRecord, Store } from '@training-callbacks/store';
import { quote } from '../validation.ts';

/** How many jobs' records and classifiers are kept in memory. */
const CACHED_JOBS = 1000;

export interface JobState {
  job: JobRecord;
  classifier: MetricClassifier;
}

export interface JobStates {
  /** Records a job (after a commit) with its classifier, keeping the epochs already loaded. */
  remember(job: JobRecord, classifier?: MetricClassifier): JobState;
  /**
   * The job's state; NOT_FOUND when there is no such job. A job remembered as running comes from
   * memory (a hint: the store's write checks it), any other is read again from the database.
   */
  existing(jobId: string): Promise<JobState>;
  /** The job's state as the database has it now. */
  refresh(jobId: string): Promise<JobState>;
  /**
   * The job's state when it is remembered as running (the common case of a report), else undefined:
   * what {@link existing} answers from memory, without a promise to wait for.
   */
  runningInMemory(jobId: string): JobState | undefined;
  /**
   * The job's state; FAILED_PRECONDITION when the database says it has ended (reports after the end
   * are refused). A fast refusal only: the store's transaction is the authority.
   */
  running(jobId: string): Promise<JobState>;
}

/** The job's metric classifier; a bad custom metric definition is the caller's INVALID_ARGUMENT. */
export function classifierFor(task: TaskType, job: Pick<JobRecord, 'customMetrics'>): MetricClassifier {
  try {
    return createMetricClassifier(task, job.customMetrics);
  } catch (error) {
    if (error instanceof CatalogError)
      throw new RpcError(Status.INVALID_ARGUMENT, `custom_metrics: ${error.message}`);
    throw error;
  }
}

export function createJobStates(store: Store): JobStates {
  const states = new Map<string, JobState>();

  function remember(job: JobRecord, classifier?: MetricClassifier): JobState {
    const previous = states.get(job.jobId);
    // The previous classifier holds while the definitions it was built from do.
    const same =
      previous !== undefined &&
      previous.job.task === job.task &&
      JSON.stringify(previous.job.customMetrics) === JSON.stringify(job.customMetrics);
    const state: JobState = {
      job,
      classifier:
        classifier ?? (same ? previous.classifier : undefined) ?? classifierFor(job.task as TaskType, job),
    };
    states.delete(job.jobId);
    states.set(job.jobId, state);
    if (states.size > CACHED_JOBS) states.delete(states.keys().next().value as string);
    return state;
  }

  function runningInMemory(jobId: string): JobState | undefined {
    const cached = states.get(jobId);
    return cached?.job.status === 'running' ? cached : undefined;
  }

  async function existing(jobId: string): Promise<JobState> {
    return runningInMemory(jobId) ?? refresh(jobId);
  }

  async function refresh(jobId: string): Promise<JobState> {
    const job = await store.getJob(jobId);
    if (!job) {
      throw new RpcError(
        Status.NOT_FOUND,
        `job ${quote(jobId)} not found; call BeginTraining (on_train_begin) first`,
      );
    }
    return remember(job);
  }

  async function running(jobId: string): Promise<JobState> {
    const state = await existing(jobId);
    if (state.job.status !== 'running') {
      throw new RpcError(
        Status.FAILED_PRECONDITION,
        `job ${quote(jobId)} has ended (${state.job.status}); reports after the end are refused — ` +
          'call BeginTraining again to resume a failed or cancelled job, or use a new job id',
      );
    }
    return state;
  }

  return { remember, existing, refresh, running, runningInMemory };
}
