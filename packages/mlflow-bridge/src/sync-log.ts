// What the sync worker's events look like in the sidecar's log: one line when a job's MLflow sync starts
// failing and one when it recovers (not one per retry), a loud block when a job is parked, warnings as
// they come, and progress of large artifact uploads (a checkpoint of several GB can take minutes).
import type { SyncEvent } from './worker.ts';

/** A log line's fields, for structured (JSON) logs: what happened and, when it is about one, the job. */
export interface MirrorLogFields {
  event: string;
  jobId?: string;
  [key: string]: unknown;
}

/** Where the mirror writes a line (the sidecar's logger). */
export type MirrorLog = (line: string, fields?: MirrorLogFields) => void;

/** Artifacts at least this large get progress lines while they upload. */
export const PROGRESS_MIN_BYTES = 16 * 2 ** 20;
/** Between the first and the last line of an upload, at most one progress line this often. */
export const PROGRESS_INTERVAL_MS = 5000;

export interface SyncLogOptions {
  log: MirrorLog;
  logError: MirrorLog;
  now?: () => number;
}

/** What a parked job whose MLflow run vanished says to do (in its parked error, so GetJob shows it too). */
export const RUN_GONE_HINT =
  'if the run can be restored in MLflow (restore a deleted run, or a backup that has it), do that and call ' +
  'RetryMlflowSync; if it is gone for good (backend reset, run deleted permanently), call ' +
  'RemirrorMlflowRun(job_id) to copy the whole job — params, tags, histories, artifacts, status — into a new run';

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;

/** Turns sync events into log lines. */
export function syncEventLogger({
  log,
  logError,
  now = Date.now,
}: SyncLogOptions): (event: SyncEvent) => void {
  /** Jobs whose last attempt failed. */
  const failing = new Set<string>();
  /** Uploads in progress: when they started and when their last line was written. */
  const uploads = new Map<string, { startedAt: number; loggedAt: number }>();

  return (event) => {
    switch (event.type) {
      case 'retry':
        if (!failing.has(event.jobId)) {
          failing.add(event.jobId);
          log(
            `[${event.jobId}] MLflow: ${event.error} — retrying (every item stays in the outbox; training is not affected)`,
            { event: 'mlflow_failing', jobId: event.jobId, error: event.error },
          );
        }
        break;
      case 'delivered':
        if (failing.delete(event.jobId)) {
          log(`[${event.jobId}] MLflow: reachable again, catching up`, {
            event: 'mlflow_recovered',
            jobId: event.jobId,
          });
        }
        break;
      case 'parked':
        failing.delete(event.jobId);
        logError(
          `[${event.jobId}] MLflow sync STOPPED for this job: ${event.error}\n` +
            `  Fix the cause, then call RetryMlflowSync for the job or restart the sidecar (parked items are ` +
            `retried at start). Nothing is lost; GetJob shows mlflow_sync.parked_error until then.`,
          { event: 'mlflow_parked', jobId: event.jobId, error: event.error },
        );
        break;
      case 'warning':
        log(`[${event.jobId || 'mlflow'}] MLflow: ${event.message}`, {
          event: 'mlflow_warning',
          ...(event.jobId && { jobId: event.jobId }),
        });
        break;
      case 'reachable':
        log(
          `MLflow answers again: retrying ${event.jobs} waiting job(s) now instead of after their backoff`,
          {
            event: 'mlflow_reachable',
            jobs: event.jobs,
          },
        );
        break;
      case 'artifact_progress': {
        const { jobId, artifactPath, sentBytes, totalBytes } = event;
        if (totalBytes < PROGRESS_MIN_BYTES) break;
        const key = `${jobId}\u0000${artifactPath}`;
        const t = now();
        let upload = uploads.get(key);
        if (!upload || sentBytes === 0) {
          // A retried upload starts again from byte 0.
          upload = { startedAt: t, loggedAt: t };
          uploads.set(key, upload);
          log(`[${jobId}] MLflow: uploading ${artifactPath} (${mib(totalBytes)})`, {
            event: 'mlflow_upload_started',
            jobId,
            artifactPath,
            totalBytes,
          });
        }
        if (sentBytes >= totalBytes) {
          uploads.delete(key);
          const seconds = Math.max(0.001, (t - upload.startedAt) / 1000);
          log(
            `[${jobId}] MLflow: uploaded ${artifactPath} (${mib(totalBytes)} in ${seconds.toFixed(1)} s, ${mib(totalBytes / seconds)}/s)`,
            { event: 'mlflow_upload_done', jobId, artifactPath, totalBytes, seconds },
          );
        } else if (t - upload.loggedAt >= PROGRESS_INTERVAL_MS) {
          upload.loggedAt = t;
          log(
            `[${jobId}] MLflow: uploading ${artifactPath}: ${Math.floor((100 * sentBytes) / totalBytes)} % (${mib(sentBytes)} of ${mib(totalBytes)})`,
            { event: 'mlflow_upload_progress', jobId, artifactPath, sentBytes, totalBytes },
          );
        }
        break;
      }
    }
  };
}
