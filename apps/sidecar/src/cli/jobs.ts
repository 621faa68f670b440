// `jobs list`, `jobs show JOB` and `jobs watch [JOB]`: the sidecar's jobs as tables (values formatted by
// the metric catalog) or as the contract's messages in proto3's JSON mapping.
import { toJson } from '@bufbuild/protobuf';
import { type RpcError, toTaskType } from '@training-callbacks/client';
import {
  DISPLAY_STATUSES,
  displayStatus,
  type EpochRecord,
  EpochRecordSchema,
  type Job,
  JobSchema,
  JobStatus,
  statusFilter,
  TaskType,
  type WatchJobEvent,
  WatchJobEventSchema,
  type WatchJobResponse,
  WatchJobResponseSchema,
  WatchJobsEventSchema,
  type WatchJobsResponse,
  WatchJobsResponseSchema,
} from '@training-callbacks/proto';
import { type ClientContext, callOptions, everyItem, getJob } from './command-context.ts';
import { UsageError } from './exit-codes.ts';
import {
  bestText,
  epochLine,
  JobMetrics,
  jobDuration,
  mlflowText,
  taskName,
  timeText,
} from './job-format.ts';
import type { Output } from './output.ts';
import { renderTable } from './output.ts';
import { resumableWatch } from './resumable-watch.ts';

/** Options of `jobs list`. */
export interface ListOptions {
  status?: string;
  task?: string;
  limit?: string;
  json?: boolean;
}

const STATUS_STYLE = {
  running: 'cyan',
  completed: 'green',
  failed: 'red',
  lost: 'magenta',
  cancelled: 'yellow',
} as const;

function styledStatus(out: Output, job: Job): string {
  const name = displayStatus(job);
  const style = STATUS_STYLE[name as keyof typeof STATUS_STYLE];
  return style ? out.style(style, name) : name;
}

function positiveInteger(flag: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number ≥ 1, got "${raw}"`);
  return n;
}

function taskFilter(raw: string | undefined): TaskType {
  if (raw === undefined) return TaskType.UNSPECIFIED;
  try {
    return toTaskType(raw);
  } catch (error) {
    throw new UsageError(`--task: ${(error as RpcError).message}`);
  }
}

function statusOption(raw: string | undefined): { status: JobStatus; keep: (job: Job) => boolean } {
  if (raw === undefined) return { status: JobStatus.UNSPECIFIED, keep: () => true };
  const filter = statusFilter(raw);
  if (filter === undefined) {
    throw new UsageError(`--status "${raw}" is not a job status; use one of ${DISPLAY_STATUSES.join(', ')}`);
  }
  return filter;
}

/** The list's row of a job. */
function jobRow(out: Output, job: Job): string[] {
  return [
    job.jobId,
    styledStatus(out, job),
    taskName(job),
    job.modelName || '–',
    job.framework || '–',
    String(job.epochsReported),
    bestText(job),
    timeText(job.createdAt),
    jobDuration(job),
    mlflowText(job.mlflowSync),
  ];
}

const LIST_HEADER = [
  'JOB',
  'STATUS',
  'TASK',
  'MODEL',
  'FRAMEWORK',
  'EPOCHS',
  'BEST',
  'STARTED',
  'DURATION',
  'MLFLOW',
];

export async function listJobs(context: ClientContext, options: ListOptions): Promise<number> {
  const { client } = context.connection;
  const limit = positiveInteger('--limit', options.limit);
  const filter = statusOption(options.status);
  const request = {
    status: filter.status,
    taskType: taskFilter(options.task),
    pageSize: Math.min(limit ?? 1000, 1000),
  };
  const jobs: Job[] = [];
  const pages = everyItem(
    (pageToken) => client.listJobs({ ...request, pageToken }, callOptions(context)),
    (p) => p.jobs,
  );
  for await (const job of pages) {
    if (!filter.keep(job)) continue;
    jobs.push(job);
    if (limit !== undefined && jobs.length >= limit) break;
  }
  const { out } = context;
  if (options.json) {
    out.data(JSON.stringify(jobs.map((job) => toJson(JobSchema, job))));
    return 0;
  }
  if (jobs.length === 0) {
    out.message(`no jobs on this sidecar${options.status || options.task ? ' with these filters' : ''}.`);
    return 0;
  }
  for (const line of renderTable(
    LIST_HEADER.map((h) => out.style('bold', h)),
    jobs.map((job) => jobRow(out, job)),
  )) {
    out.data(line);
  }
  return 0;
}

/** The `key  value` lines of `jobs show`. */
function jobDetails(out: Output, job: Job, metrics: JobMetrics): string[][] {
  const rows: string[][] = [
    ['job', job.jobId],
    ['status', styledStatus(out, job)],
    ['task', taskName(job)],
    ['model', [job.modelName || '–', job.framework && `(${job.framework})`].filter(Boolean).join(' ')],
    ['started', timeText(job.createdAt)],
    ['ended', job.endedAt ? timeText(job.endedAt) : '–'],
    ['duration', jobDuration(job)],
    [
      'epochs',
      `${job.epochsReported} reported${job.startEpoch ? ` (resumed from epoch ${job.startEpoch})` : ''}`,
    ],
    ['best', bestText(job, metrics)],
  ];
  if (Object.keys(job.finalMetrics).length > 0) rows.push(['final', metrics.line(job.finalMetrics)]);
  if (job.errorMessage) rows.push(['error', out.style('red', job.errorMessage)]);
  if (job.endReason) rows.push(['reason', out.style('red', job.endReason)]);
  if (job.lastSeenAt) rows.push(['last seen', timeText(job.lastSeenAt)]);
  const losses = job.clientLosses;
  if (losses && (losses.droppedPoints || losses.refusedPoints || losses.failedWrites)) {
    rows.push([
      'losses',
      `${losses.droppedPoints} points dropped, ${losses.refusedPoints} refused, ${losses.failedWrites} writes failed` +
        (losses.reasons.length ? `: ${losses.reasons.join('; ')}` : ''),
    ]);
  }
  const run = job.mlflowRunId ? `run ${job.mlflowRunId} (experiment ${job.mlflowExperimentId}) │ ` : '';
  rows.push(['mlflow', `${run}${mlflowText(job.mlflowSync)}`]);
  if (job.runName) rows.push(['run name', job.runName]);
  const params = Object.entries(job.params);
  if (params.length) rows.push(['params', params.map(([k, v]) => `${k}=${v}`).join(' ')]);
  const tags = Object.entries(job.tags);
  if (tags.length) rows.push(['tags', tags.map(([k, v]) => `${k}=${v}`).join(' ')]);
  return rows;
}

export async function showJob(
  context: ClientContext,
  jobId: string,
  options: { json?: boolean },
): Promise<number> {
  const { client } = context.connection;
  const job = await getJob(context, jobId);
  const epochs: EpochRecord[] = [];
  const pages = everyItem(
    (pageToken) => client.listEpochs({ jobId, pageSize: 1000, pageToken }, callOptions(context)),
    (page) => page.epochs,
  );
  for await (const epoch of pages) {
    epochs.push(epoch);
  }
  const { out } = context;
  if (options.json) {
    out.data(
      JSON.stringify({
        job: toJson(JobSchema, job),
        epochs: epochs.map((e) => toJson(EpochRecordSchema, e)),
      }),
    );
    return 0;
  }
  const metrics = new JobMetrics(job);
  for (const line of renderTable(['', ''], jobDetails(out, job, metrics)).slice(1)) out.data(line);
  if (epochs.length === 0) return 0;
  const names = metrics.order(epochs.flatMap((e) => Object.keys(e.metrics)));
  const header = ['EPOCH', ...names.map((name) => metrics.label(name)), 'TIME'];
  const rows = epochs.map((epoch) => [
    epoch.epoch === job.bestEpoch ? out.style('bold', `${epoch.epoch}*`) : String(epoch.epoch),
    ...names.map((name) => (name in epoch.metrics ? metrics.format(name, epoch.metrics[name]!) : '')),
    timeText(epoch.timestamp),
  ]);
  out.data('');
  for (const line of renderTable(
    header.map((h) => out.style('bold', h)),
    rows,
  ))
    out.data(line);
  return 0;
}

/** Options of `jobs watch`. */
export interface WatchOptions {
  json?: boolean;
  afterSeq?: string;
  fromHead?: boolean;
  heartbeats?: boolean;
  reconnectFor?: string;
  stallTimeout?: string;
}

function watchStart(options: WatchOptions) {
  let afterSeq = 0n;
  if (options.afterSeq !== undefined) {
    if (!/^\d+$/.test(options.afterSeq)) {
      throw new UsageError(
        `--after-seq must be a sequence number (the seq of the last event seen), got "${options.afterSeq}"`,
      );
    }
    afterSeq = BigInt(options.afterSeq);
  }
  if (afterSeq > 0n && options.fromHead) throw new UsageError('give --after-seq or --from-head, not both');
  const reconnectFor = Number(options.reconnectFor ?? '300');
  if (!Number.isFinite(reconnectFor) || reconnectFor < 0) {
    throw new UsageError(`--reconnect-for must be a number of seconds ≥ 0, got "${options.reconnectFor}"`);
  }
  const stall = Number(options.stallTimeout ?? '60');
  if (!Number.isFinite(stall) || stall <= 0) {
    throw new UsageError(
      `--stall-timeout must be a positive number of seconds, got "${options.stallTimeout}"`,
    );
  }
  return {
    afterSeq,
    fromHead: options.fromHead === true,
    reconnectForMs: reconnectFor * 1000,
    stallMs: stall * 1000,
  };
}

function reconnectMessages(context: ClientContext) {
  return {
    onReconnecting: (error: RpcError, afterSeq: bigint, delayMs: number) =>
      context.out.message(
        context.out.styleErr(
          'yellow',
          `connection lost (${error.codeName}: ${error.message}); reconnecting in ${Math.round(delayMs)} ms to resume after seq ${afterSeq}…`,
        ),
      ),
    onReconnected: (afterSeq: bigint) => context.out.message(`reconnected; resumed after seq ${afterSeq}`),
  };
}

export async function watchJobs(context: ClientContext, options: WatchOptions): Promise<number> {
  const { client } = context.connection;
  const start = watchStart(options);
  const { out } = context;
  const responses = resumableWatch<WatchJobsResponse>({
    ...start,
    ...reconnectMessages(context),
    signal: context.signal,
    open: (afterSeq, fromHead, signal) => client.watchJobs({ afterSeq, fromHead }, { signal }),
  });
  // A message carries several events: one line each, as {"seq", "job"} (a heartbeat: {"seq", "heartbeat"}).
  for await (const response of responses) {
    if (response.heartbeat) {
      if (!options.heartbeats) continue;
      if (options.json) out.data(JSON.stringify(toJson(WatchJobsResponseSchema, response)));
      else out.data(`#${response.seq}  heartbeat ${timeText(response.heartbeat.at)}`);
      continue;
    }
    for (const event of response.events) {
      if (options.json) out.data(JSON.stringify(toJson(WatchJobsEventSchema, event)));
      else if (event.job) out.data(`#${event.seq}  ${jobRow(out, event.job).join('  ')}`);
    }
  }
  return 0;
}

export async function watchJob(
  context: ClientContext,
  jobId: string,
  options: WatchOptions,
): Promise<number> {
  const { client } = context.connection;
  const start = watchStart(options);
  // The job first: NOT_FOUND at once for an unknown id, and its task for the formats.
  let metrics = new JobMetrics(await getJob(context, jobId));
  const { out } = context;
  const responses = resumableWatch<WatchJobResponse>({
    ...start,
    ...reconnectMessages(context),
    signal: context.signal,
    open: (afterSeq, fromHead, signal) => client.watchJob({ jobId, afterSeq, fromHead }, { signal }),
  });
  for await (const response of responses) {
    if (response.heartbeat) {
      if (!options.heartbeats) continue;
      if (options.json) out.data(JSON.stringify(toJson(WatchJobResponseSchema, response)));
      else out.data(`#${response.seq}  heartbeat ${timeText(response.heartbeat.at)}`);
      continue;
    }
    for (const event of response.events) {
      if (options.json) out.data(JSON.stringify(toJson(WatchJobEventSchema, event)));
      else metrics = printJobEvent(out, event, metrics);
    }
  }
  return 0;
}

/** A line for an event of a job's watch; the job's metrics as of the event (a job event renews them). */
function printJobEvent(out: Output, event: WatchJobEvent, metrics: JobMetrics): JobMetrics {
  const seq = `#${event.seq}`;
  switch (event.event.case) {
    case 'job':
      metrics = new JobMetrics(event.event.value);
      out.data(
        `${seq}  job ${styledStatus(out, event.event.value)}  epochs ${event.event.value.epochsReported}  best ${bestText(event.event.value, metrics)}  mlflow ${mlflowText(event.event.value.mlflowSync)}`,
      );
      break;
    case 'epoch': {
      const line = epochLine(event.event.value, metrics);
      const best = event.epochJob?.bestEpoch === event.event.value.epoch ? out.style('bold', '  ★ best') : '';
      out.data(`${seq}  ${line}${best}`);
      break;
    }
    case 'batch': {
      const block = event.event.value;
      const rows = block.steps.length;
      const last = block.names.map(
        (name, i) =>
          `${metrics.label(name)} ${metrics.format(name, block.values[(rows - 1) * block.names.length + i]!)}`,
      );
      out.data(
        `${seq}  batch epoch ${block.epoch} steps ${block.steps[0]}–${block.steps[rows - 1]} (${rows} rows) │ last ${last.join(' │ ')}`,
      );
      break;
    }
    case 'artifact':
      out.data(`${seq}  artifact ${event.event.value.artifactPath} (${event.event.value.sizeBytes} bytes)`);
      break;
  }
  return metrics;
}
