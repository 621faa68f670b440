// `mlflow status [JOB]`, `mlflow retry JOB`, `mlflow remirror JOB`: the operator's view of the MLflow
// mirror and its two repairs (RetryMlflowSync after a parked error's cause is fixed; RemirrorMlflowRun
// for a run that vanished from MLflow).
import { toJson } from '@bufbuild/protobuf';
import { displayStatus, type Job, JobSchema, MlflowSyncSchema } from '@training-callbacks/proto';
import { type ClientContext, callOptions, everyItem, getJob } from './command-context.ts';
import { durationText, mlflowText } from './job-format.ts';
import { renderTable } from './output.ts';

function syncRow(job: Job): string[] {
  const sync = job.mlflowSync;
  return [
    job.jobId,
    displayStatus(job),
    job.mlflowRunId || '–',
    !sync?.enabled ? 'off' : sync.parkedError ? 'parked' : sync.inSync ? 'in sync' : 'pending',
    String(sync?.pendingItems ?? 0n),
    sync?.pendingItems ? durationText(sync.oldestPendingAgeSeconds * 1000) : '–',
    sync?.parkedError ?? '',
  ];
}

export async function mlflowStatus(
  context: ClientContext,
  jobId: string | undefined,
  options: { json?: boolean },
): Promise<number> {
  const { client } = context.connection;
  const { out } = context;
  const jobs: Job[] = [];
  if (jobId !== undefined) {
    jobs.push(await getJob(context, jobId));
  } else {
    const pages = everyItem(
      (pageToken) => client.listJobs({ pageSize: 1000, pageToken }, callOptions(context)),
      (p) => p.jobs,
    );
    for await (const job of pages) {
      jobs.push(job);
    }
  }
  if (options.json) {
    const rows = jobs.map((job) => ({
      jobId: job.jobId,
      mlflowExperimentId: job.mlflowExperimentId,
      mlflowRunId: job.mlflowRunId,
      mlflowSync: job.mlflowSync
        ? toJson(MlflowSyncSchema, job.mlflowSync, { alwaysEmitImplicit: true })
        : null,
    }));
    out.data(JSON.stringify(jobId !== undefined ? rows[0] : rows));
    return 0;
  }
  if (jobs.length === 0) {
    out.message('no jobs on this sidecar.');
    return 0;
  }
  if (jobs.every((job) => !job.mlflowSync?.enabled)) {
    out.message('MLflow is off on this sidecar (start it with MLFLOW_TRACKING_URI set to mirror jobs).');
  }
  const header = ['JOB', 'STATUS', 'RUN', 'SYNC', 'PENDING', 'OLDEST', 'PARKED ERROR'];
  for (const line of renderTable(
    header.map((h) => out.style('bold', h)),
    jobs.map(syncRow),
  ))
    out.data(line);
  const parked = jobs.filter((job) => job.mlflowSync?.parkedError);
  if (parked.length) {
    out.message(
      `${parked.length} job${parked.length === 1 ? '' : 's'} parked: fix the cause the error names, then run \`training-callbacks mlflow retry JOB\`.`,
    );
  }
  return 0;
}

export async function mlflowRetry(
  context: ClientContext,
  jobId: string,
  options: { json?: boolean },
): Promise<number> {
  const { client } = context.connection;
  const response = await client.retryMlflowSync({ jobId }, callOptions(context));
  const { out } = context;
  if (options.json) {
    out.data(
      JSON.stringify({ retriedItems: String(response.retriedItems), job: toJson(JobSchema, response.job!) }),
    );
  } else {
    out.data(
      `${jobId}  retried ${response.retriedItems} items  mlflow ${mlflowText(response.job?.mlflowSync)}`,
    );
  }
  if (response.retriedItems === 0n)
    out.message('nothing was waiting or parked: the job’s items are already being sent.');
  return 0;
}

export async function mlflowRemirror(
  context: ClientContext,
  jobId: string,
  options: { json?: boolean },
): Promise<number> {
  const { client } = context.connection;
  const response = await client.remirrorMlflowRun({ jobId }, callOptions(context));
  const { out } = context;
  if (options.json) {
    out.data(
      JSON.stringify({
        queuedItems: String(response.queuedItems),
        droppedItems: String(response.droppedItems),
        job: toJson(JobSchema, response.job!),
      }),
    );
  } else {
    out.data(
      `${jobId}  queued ${response.queuedItems} items (replacing ${response.droppedItems} pending)  mlflow ${mlflowText(response.job?.mlflowSync)}`,
    );
  }
  out.message(
    'the whole job is queued for MLflow again; follow it with `training-callbacks mlflow status ' +
      jobId +
      '`.',
  );
  return 0;
}
