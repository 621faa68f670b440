// Display rules: values formatted the way the metric catalog says (percent, float, int), statuses,
// times and durations. The catalog itself comes from the sidecar (GetMetricCatalog); nothing here
// re-types a metric.
import { type Timestamp, timestampDate } from '@bufbuild/protobuf/wkt';
import {
  type MetricFormat as CatalogMetricFormat,
  formatMetricValue,
} from '@training-callbacks/metric-catalog/format-metric';
import {
  displayStatus,
  enumNames,
  isLost,
  type Job,
  JobStatus,
  type MetricDefinition,
  MetricFormatSchema,
  statusFilter,
  type TaskCatalog,
  TaskType,
  TaskTypeSchema,
} from '@training-callbacks/proto';

const taskNames = enumNames<string>()(TaskTypeSchema);

/** "object_detection" → "object detection". */
export function taskLabel(task: TaskType): string {
  return (taskNames.name(task) ?? 'unknown task').replaceAll('_', ' ');
}

export function taskName(task: TaskType): string | undefined {
  return taskNames.name(task);
}

export function parseTask(name: string | null): TaskType {
  return (name && taskNames.parse(name)) || TaskType.UNSPECIFIED;
}

export const TASKS: readonly TaskType[] = taskNames.names().map((n) => taskNames.number(n));

const formatNames = enumNames<CatalogMetricFormat>()(MetricFormatSchema);

/**
 * A metric value as its definition says, by the catalog's one formatter (the CLI and the sidecar's
 * console line use it too): "91.20%", "0.2340", "2.500e-4", "12"; NaN and ±Inf as such; "—" when missing.
 */
export function formatValue(value: number | undefined, definition: MetricDefinition | undefined): string {
  if (value === undefined) return '—';
  return formatMetricValue({ format: formatName(definition) }, value);
}

/** The definitions that apply to a job: its task's standard metrics, then its custom metrics. */
export interface JobDefinitions {
  readonly primary: string;
  readonly standard: readonly MetricDefinition[];
  readonly custom: ReadonlyMap<string, MetricDefinition>;
  get(name: string): MetricDefinition | undefined;
  isStandard(name: string): boolean;
}

export function definitionsOf(job: Job, catalog: TaskCatalog | undefined): JobDefinitions {
  const standard = catalog?.standardMetrics ?? [];
  const byName = new Map(standard.map((d) => [d.name, d]));
  const custom = new Map(job.customMetrics.map((d) => [d.name, d]));
  return {
    primary: job.primaryMetric || catalog?.primaryMetric || '',
    standard,
    custom,
    get: (name) => byName.get(name) ?? custom.get(name),
    isStandard: (name) => byName.has(name),
  };
}

/** The label of a metric: the catalog's (or the job's custom definition's), else its name. */
export function labelOf(name: string, definitions: JobDefinitions): string {
  return definitions.get(name)?.label || name;
}

/** "↑ higher is better" / "↓ lower is better". */
export function directionOf(definition: MetricDefinition | undefined): string {
  if (!definition) return '';
  return definition.higherIsBetter ? '↑ higher is better' : '↓ lower is better';
}

/** The definition's format by the catalog's name: "percent", "float" (also when unspecified) or "int". */
export function formatName(definition: MetricDefinition | undefined): CatalogMetricFormat {
  return (definition && formatNames.name(definition.format)) || 'float';
}

export function dateOf(timestamp: Timestamp | undefined): Date | undefined {
  return timestamp ? timestampDate(timestamp) : undefined;
}

/** "2026-12-02 07:14:03" in the viewer's time zone. */
export function formatTime(date: Date | undefined): string {
  if (!date) return '—';
  const pad = (n: number) => n.toString().padStart(2, '0');
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** "4 s", "12 min 3 s", "2 h 05 min". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  const h = Math.floor(m / 60);
  return `${h} h ${(m % 60).toString().padStart(2, '0')} min`;
}

/** How long the job ran (or runs, until `now`). */
export function jobDuration(job: Job, now: number): number {
  const start = dateOf(job.createdAt)?.getTime();
  if (start === undefined) return Number.NaN;
  return (dateOf(job.endedAt)?.getTime() ?? now) - start;
}

/** "1.5 MiB". */
export function formatBytes(bytes: bigint | number): string {
  let n = Number(bytes);
  for (const unit of ['B', 'KiB', 'MiB', 'GiB']) {
    if (n < 1024 || unit === 'GiB') return unit === 'B' ? `${n} B` : `${n.toFixed(1)} ${unit}`;
    n /= 1024;
  }
  return `${n} B`;
}

/** The primary value the list shows: the final one once ended, else the best so far. */
export function primaryValueOf(job: Job): number | undefined {
  return job.finalPrimaryValue ?? job.bestValue;
}

/**
 * What the job's status badge says and why. A lost job (the sidecar's verdict: FAILED with a lost end
 * cause) is told apart from one whose trainer reported a failure; each shows its reason (the verdict's
 * sentence, or the trainer's error message). A job whose client could not deliver everything says so.
 */
export function statusOf(job: Job): { label: string; kind: string; reason: string } {
  const lost = isLost(job);
  const label = displayStatus(job);
  const losses = job.clientLosses;
  const lossReason =
    losses && (losses.droppedPoints > 0n || losses.refusedPoints > 0n || losses.failedWrites > 0n)
      ? `client could not deliver: ${losses.droppedPoints} dropped, ${losses.refusedPoints} refused points, ${losses.failedWrites} failed writes${losses.reasons.length ? ` (${losses.reasons.join('; ')})` : ''}`
      : '';
  const endReason = lost
    ? job.endReason || 'lost: the sidecar lost its trainer'
    : job.status === JobStatus.FAILED
      ? job.errorMessage || 'failed without a message'
      : '';
  return { label, kind: label, reason: [endReason, lossReason].filter(Boolean).join(' — ') };
}

/** The list's status filter: what a job's badge says (a JobStatus name, or "lost"); '' keeps every job. */
export function matchesStatusFilter(job: Job, filter: string): boolean {
  return filter === '' || (statusFilter(filter)?.keep(job) ?? false);
}

/** MLflow sync as one short phrase, and whether it needs attention. */
export function syncOf(job: Job): { text: string; attention: boolean } {
  const sync = job.mlflowSync;
  if (!sync?.enabled) return { text: 'off', attention: false };
  if (sync.parkedError) return { text: `stopped: ${sync.parkedError}`, attention: true };
  if (sync.inSync) return { text: 'in sync', attention: false };
  return {
    text: `${sync.pendingItems} pending (oldest ${formatDuration(sync.oldestPendingAgeSeconds * 1000)})`,
    attention: sync.oldestPendingAgeSeconds > 300,
  };
}

/** The MLflow UI's page of the job's run, when it is mirrored and the UI's address is known. */
export function mlflowRunUrl(job: Job, base: string | undefined): string | undefined {
  if (!base || !job.mlflowExperimentId || !job.mlflowRunId) return undefined;
  return `${base.replace(/\/+$/, '')}/#/experiments/${encodeURIComponent(job.mlflowExperimentId)}/runs/${encodeURIComponent(job.mlflowRunId)}`;
}
