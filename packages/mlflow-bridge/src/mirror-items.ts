// The outbox items that mirror a job into MLflow, built in one place: by the write handlers as the
// data arrives, and all at once from the stored job by RemirrorMlflowRun. A copy built from the store
// carries the very timestamps the first mirror sent, so filling up a run that still holds some of the
// points duplicates none (MLflow drops exact duplicates).

import { listTaskCatalogs } from '@training-callbacks/metric-catalog';
import { isSystemMetric } from '@training-callbacks/proto';
import type { JobSnapshot, JobStatus } from '@training-callbacks/store';
import { type JobBegunPayload, type JobEndedPayload, type NewOutboxItem, outboxItems } from './outbox.ts';

/** How an ended job's MLflow run ends. */
export const RUN_STATUS: Record<Exclude<JobStatus, 'running'>, JobEndedPayload['status']> = {
  completed: 'FINISHED',
  failed: 'FAILED',
  cancelled: 'KILLED',
};

/** The outbox kind of a batch-block reference (its points are read from the block when sent). */
export const BATCH_ITEM_KIND = 'batch_metrics';

/**
 * Indexed families whose first member the catalog renames: an alias ending in a 0 after a non-digit
 * (`lr/pg0` → `learning_rate`, `x/lr0` → `learning_rate`) names the first of `<stem>0, <stem>1, …`
 * (an optimiser's parameter groups). Stem → canonical name, from every task's aliases (a stem that
 * two tasks map differently is left out).
 */
const FAMILIES: ReadonlyMap<string, string> = (() => {
  const out = new Map<string, string>();
  const conflicting = new Set<string>();
  for (const catalog of listTaskCatalogs()) {
    for (const { alias, name } of catalog.aliases) {
      const m = /^(.*\D)0$/.exec(alias);
      if (!m) continue;
      const stem = m[1]!;
      if (out.has(stem) && out.get(stem) !== name) conflicting.add(stem);
      out.set(stem, name);
    }
  }
  for (const stem of conflicting) out.delete(stem);
  return out;
})();

/**
 * A metric's name in MLflow, from the name the sidecar stores it under: the same except for the members
 * of an indexed family whose first member the catalog renames, which follow it, so the UI shows them
 * together: `lr/pg0` is stored as `learning_rate`, and `lr/pg1`, `lr/pg2` go to MLflow as
 * `learning_rate_pg1`, `learning_rate_pg2` (the canonical name, `_`, the last path segment of the
 * reported one). Every such rename is recorded in the run (see `metricSourcesItem`).
 */
export function mlflowMetricName(name: string): string {
  const m = /^(.*\D)(\d+)$/.exec(name);
  const canonical = m && FAMILIES.get(m[1]!);
  if (!canonical) return name;
  return m[2] === '0' ? canonical : `${canonical}_${name.slice(name.lastIndexOf('/') + 1)}`;
}

/** `metrics` under their MLflow names (a name whose MLflow name is taken keeps its own). */
export function mlflowMetrics(metrics: Readonly<Record<string, number>>): Record<string, number> {
  const out: Record<string, number> = Object.create(null);
  const names = Object.keys(metrics);
  const taken = new Set(names);
  for (const name of names) {
    const renamed = mlflowMetricName(name);
    out[renamed !== name && taken.has(renamed) ? name : renamed] = metrics[name]!;
  }
  return out;
}

/**
 * Prefix of batch-level metric keys in MLflow. Epoch metrics use step = epoch and batch metrics
 * step = global step; sharing one key would mix both axes in one history (the catalog normalises a
 * batch `loss` to `train_loss`, an epoch metric too), so batch points get their own keys.
 */
export const BATCH_KEY_PREFIX = 'batch/';

/**
 * The MLflow key of a stored batch metric: `batch/` + its MLflow name, except for MLflow's own system
 * metrics (`system/…`, sampled by the clients), which keep their name so that MLflow's "System metrics"
 * tab shows them (no epoch metric shares their keys).
 */
export function mlflowBatchKey(name: string): string {
  return isSystemMetric(name) ? name : BATCH_KEY_PREFIX + mlflowMetricName(name);
}

/** One metric as MLflow will show it, with what the trainer reported: recorded when they differ. */
export interface MetricSource {
  /** The name the mirror sends (before MLflow's character rules). */
  name: string;
  /** The name the trainer reported. */
  reported: string;
  /** The catalog's unit factor (0.01: reported in percent, stored as a fraction). */
  scale: number;
}

const sourceKey = (s: MetricSource) => `${s.name}\u0000${s.reported}\u0000${s.scale}`;

/**
 * Remembers, per job, which renames and unit changes this sidecar knows are recorded, so a report does
 * not send them again. A cache only: for batch streams the store records each once per job
 * (`metric_source`, whichever sidecar saw it first) and a re-mirror queues them all again from there,
 * so what is remembered here is always in the database and nothing invalidates it but the job's
 * deletion. (EndEpoch still queues its epoch's sources from this memory alone, once per sidecar.)
 */
export class MetricSources {
  readonly #recorded = new Map<string, Set<string>>();
  readonly #maxJobs: number;

  constructor(maxJobs = 1000) {
    this.#maxJobs = maxJobs;
  }

  /** The sources among `candidates` that rename or rescale and were not recorded yet for the job. */
  unrecorded(jobId: string, candidates: readonly MetricSource[]): MetricSource[] {
    const seen = this.#recorded.get(jobId);
    const out = new Map<string, MetricSource>();
    for (const s of candidates) {
      if ((s.reported !== s.name || s.scale !== 1) && !seen?.has(sourceKey(s))) out.set(sourceKey(s), s);
    }
    return [...out.values()];
  }

  /** After the commit that queued them. */
  recorded(jobId: string, sources: readonly MetricSource[]): void {
    if (sources.length === 0) return;
    let seen = this.#recorded.get(jobId);
    if (!seen) {
      seen = new Set();
      this.#recorded.set(jobId, seen);
      if (this.#recorded.size > this.#maxJobs) this.#recorded.delete(this.#recorded.keys().next().value!);
    }
    for (const s of sources) seen.add(sourceKey(s));
  }
}

/** The item that records renames and unit changes in the run (tags; see the bridge's `metric_sources`). */
export function metricSourcesItem(sources: readonly MetricSource[]): NewOutboxItem {
  return outboxItems.metricSources(sources.map(({ name, reported, scale }) => ({ name, reported, scale })));
}

/** EndEpoch's item: the epoch's metrics (by stored name) at step = epoch. */
export function epochItem(epoch: number, metrics: Readonly<Record<string, number>>, timestampMs: number) {
  return outboxItems.epochMetrics(epoch, mlflowMetrics(metrics), timestampMs);
}

/** BeginTraining's item: the run (found or created), its tags and params. */
export function jobBegunItem(
  job: Pick<JobBegunPayload, 'task' | 'framework' | 'modelName' | 'params'> & {
    runName: string;
    tags: Record<string, string>;
  },
  startTimeMs: number,
  extra: Pick<JobBegunPayload, 'remirror'> = {},
): NewOutboxItem {
  return outboxItems.jobBegun({
    task: job.task,
    framework: job.framework,
    modelName: job.modelName,
    params: job.params,
    // Only what the trainer sent: an empty name keeps the bridge's default, and no extra tags adds none.
    ...(job.runName && { runName: job.runName }),
    ...(Object.keys(job.tags).length && { tags: { ...job.tags } }),
    startTimeMs,
    ...extra,
  });
}

/** A stored artifact file, to upload into the run's artifacts. */
export function artifactItem(record: {
  storedPath: string;
  artifactPath: string;
  sizeBytes: number;
  sha256: string;
}): NewOutboxItem {
  return outboxItems.artifact(record.storedPath, record.artifactPath, {
    sizeBytes: record.sizeBytes,
    sha256: record.sha256,
  });
}

/** EndTraining's items: the final metrics (at `finalStep`, when there are any), then the run's end. */
export function endItems(
  status: Exclude<JobStatus, 'running'>,
  finalMetrics: Record<string, number>,
  finalStep: number,
  endedAtMs: number,
  errorMessage: string,
  endReason = '',
): NewOutboxItem[] {
  return [
    ...(Object.keys(finalMetrics).length
      ? [outboxItems.finalMetrics(mlflowMetrics(finalMetrics), finalStep, endedAtMs)]
      : []),
    outboxItems.jobEnded(RUN_STATUS[status], endedAtMs, errorMessage || undefined, endReason || undefined),
  ];
}

/**
 * A verdict's item: the run FAILED at the trainer's last sign of life, the verdict in its
 * `training_callbacks.end_cause` tag.
 */
export function lostItems(reason: string, lastSignOfLifeMs: number): NewOutboxItem[] {
  return [outboxItems.jobEnded('FAILED', lastSignOfLifeMs, undefined, reason)];
}

/**
 * A revival's item (or a resume's, by a new process, `how` = 'resumed'): the run RUNNING again, its
 * end-cause tag saying when and from what.
 */
export function revivedItems(lostReason: string, atMs: number, how = 'revived'): NewOutboxItem[] {
  return [outboxItems.jobRevived(`${how} at ${new Date(atMs).toISOString()} after: ${lostReason}`)];
}

/**
 * The whole job as stored, in the order the handlers would have queued it: the begin, every epoch,
 * every batch block (by reference), the artifacts, then — for an ended job — its final metrics and end.
 */
export function jobCopyItems({ job, epochs, metricSources, artifacts }: JobSnapshot): {
  before: NewOutboxItem[];
  blockKind: string;
  after: NewOutboxItem[];
} {
  const before = [
    jobBegunItem(job, job.createdAt.getTime(), { remirror: true }),
    // The new run is told every rename and unit change recorded for the job (its reports may be over).
    ...(metricSources.length ? [metricSourcesItem(metricSources)] : []),
    ...epochs.map((e) => epochItem(e.epoch, e.metrics, e.timestamp.getTime())),
  ];
  const after = artifacts.map(artifactItem);
  if (job.status !== 'running' && job.endedAt) {
    const finalStep = epochs.reduce((step, e) => Math.max(step, e.epoch), job.startEpoch);
    after.push(
      ...endItems(
        job.status,
        job.finalMetrics,
        finalStep,
        job.endedAt.getTime(),
        job.errorMessage,
        job.endReason,
      ),
    );
  }
  return { before, blockKind: BATCH_ITEM_KIND, after };
}
