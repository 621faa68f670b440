// The outbox items that mirror a job into MLflow, built in one place: by the write handlers as the
// data arrives, and all at once from the stored job by RemirrorMlflowRun. A copy built from the store
// carries the very timestamps the first mirror sent, so filling up a run that still holds some of the
// points duplicates none (MLflow drops exact duplicates).
import {
  type JobBegunPayload,
  type JobEndedPayload,
  type NewOutboxItem,
  outboxItems,
} from '@training-callbacks/mlflow-bridge/core';
import type { JobSnapshot, JobStatus } from '@training-callbacks/store';

/** How an ended job's MLflow run ends. */
export const RUN_STATUS: Record<Exclude<JobStatus, 'running'>, JobEndedPayload['status']> = {
  completed: 'FINISHED',
  failed: 'FAILED',
  cancelled: 'KILLED',
};

/** The outbox kind of a batch-block reference (its points are read from the block when sent). */
export const BATCH_ITEM_KIND = 'batch_metrics';

/** BeginTraining's item: the run (found or created), its tags and params. */
export function jobBegunItem(
  job: Pick<JobBegunPayload, 'task' | 'framework' | 'modelName' | 'params'>,
  startTimeMs: number,
  extra: Pick<JobBegunPayload, 'remirror'> = {},
): NewOutboxItem {
  return outboxItems.jobBegun({
    task: job.task,
    framework: job.framework,
    modelName: job.modelName,
    params: job.params,
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
): NewOutboxItem[] {
  return [
    ...(Object.keys(finalMetrics).length
      ? [outboxItems.finalMetrics(finalMetrics, finalStep, endedAtMs)]
      : []),
    outboxItems.jobEnded(RUN_STATUS[status], endedAtMs, errorMessage || undefined),
  ];
}

/**
 * The whole job as stored, in the order the handlers would have queued it: the begin, every epoch,
 * every batch block (by reference), the artifacts, then — for an ended job — its final metrics and end.
 */
export function jobCopyItems({ job, epochs, artifacts }: JobSnapshot): {
  before: NewOutboxItem[];
  blockKind: string;
  after: NewOutboxItem[];
} {
  const before = [
    jobBegunItem(job, job.createdAt.getTime(), { remirror: true }),
    ...epochs.map((e) => outboxItems.epochMetrics(e.epoch, e.metrics, e.timestamp.getTime())),
  ];
  const after = artifacts.map(artifactItem);
  if (job.status !== 'running' && job.endedAt) {
    const finalStep = epochs.reduce((step, e) => Math.max(step, e.epoch), job.startEpoch);
    after.push(...endItems(job.status, job.finalMetrics, finalStep, job.endedAt.getTime(), job.errorMessage));
  }
  return { before, blockKind: BATCH_ITEM_KIND, after };
}
