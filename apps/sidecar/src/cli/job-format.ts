// How jobs, epochs and watch events read in a terminal: labels, formats (percent, float, int) and the
// primary metric from the metric catalog, as the sidecar's console line and the dashboard show them.

import type { Timestamp } from '@bufbuild/protobuf/wkt';
import { timestampDate } from '@bufbuild/protobuf/wkt';
import {
  formatMetricValue,
  getTaskCatalog,
  isTaskType,
  type MetricDefinition,
  type MetricFormat,
} from '@training-callbacks/metric-catalog';
import {
  type EpochRecord,
  enumNames,
  type Job,
  MetricFormatSchema,
  type MlflowSync,
  type MetricDefinition as ProtoMetricDefinition,
  TaskTypeSchema,
} from '@training-callbacks/proto';

const tasks = enumNames<string>()(TaskTypeSchema);
const formats = enumNames<MetricFormat>()(MetricFormatSchema);

/** `object_detection`, … */
export const taskName = (job: Job): string => tasks.name(job.taskType) ?? 'unknown';

function fromProto(definition: ProtoMetricDefinition): MetricDefinition {
  return {
    name: definition.name,
    label: definition.label || definition.name,
    format: formats.name(definition.format) ?? 'float',
    higherIsBetter: definition.higherIsBetter,
    description: definition.description,
  };
}

/** A job's metric definitions: its task's standard metrics (primary first), then its custom metrics. */
export class JobMetrics {
  readonly primary: string;
  private readonly definitions = new Map<string, MetricDefinition>();
  private readonly standard: readonly string[];

  constructor(job: Job) {
    const task = taskName(job);
    const catalog = isTaskType(task) ? getTaskCatalog(task) : undefined;
    for (const definition of catalog?.standardMetrics ?? [])
      this.definitions.set(definition.name, definition);
    this.standard = (catalog?.standardMetrics ?? []).map((d) => d.name);
    for (const custom of job.customMetrics) {
      if (!this.definitions.has(custom.name)) this.definitions.set(custom.name, fromProto(custom));
    }
    this.primary = job.primaryMetric || catalog?.primaryMetric || '';
  }

  /** The metric's label (its name when the catalog does not know it). */
  label(name: string): string {
    return this.definitions.get(name)?.label ?? name;
  }

  /** The value as its definition formats it (float for unknown metrics). */
  format(name: string, value: number): string {
    return formatMetricValue(this.definitions.get(name), value);
  }

  /** Whether the metric is one of the task's standard metrics (the primary included). */
  isStandard(name: string): boolean {
    return this.standard.includes(name);
  }

  /** Names in display order: the standard metrics in catalog order, then the rest by name. */
  order(names: Iterable<string>): string[] {
    const present = new Set(names);
    const standard = this.standard.filter((name) => present.has(name));
    const rest = [...present].filter((name) => !this.standard.includes(name)).sort();
    return [...standard, ...rest];
  }

  /** `Accuracy 91.20% │ Train loss 0.2340 │ +2 custom`: the standard metrics, then a count of the others. */
  line(metrics: Readonly<Record<string, number>>): string {
    const names = this.order(Object.keys(metrics));
    const parts = names
      .filter((name) => this.isStandard(name))
      .map((name) => `${this.label(name)} ${this.format(name, metrics[name]!)}`);
    const custom = names.length - parts.length;
    if (custom > 0) parts.push(`+${custom} custom`);
    return parts.join(' │ ');
  }
}

/** `mAP@0.5 61.20% @ epoch 7`, or `mAP@0.5 –` before any finite primary value. */
export function bestText(job: Job, metrics = new JobMetrics(job)): string {
  if (job.bestValue === undefined || job.bestEpoch === undefined)
    return `${metrics.label(metrics.primary)} –`;
  return `${metrics.label(metrics.primary)} ${metrics.format(metrics.primary, job.bestValue)} @ epoch ${job.bestEpoch}`;
}

/** `in sync`, `3 pending (oldest 12s)`, `parked: …`, `off`. */
export function mlflowText(sync: MlflowSync | undefined): string {
  if (!sync?.enabled) return 'off';
  if (sync.parkedError) return `parked: ${sync.parkedError}`;
  if (sync.inSync) return 'in sync';
  return `${sync.pendingItems} pending (oldest ${durationText(sync.oldestPendingAgeSeconds * 1000)})`;
}

/** `2026-12-02 06:01:02Z` (UTC, seconds). */
export function timeText(timestamp: Timestamp | undefined): string {
  if (!timestamp) return '–';
  return `${timestampDate(timestamp).toISOString().slice(0, 19).replace('T', ' ')}Z`;
}

/** `12s`, `3m05s`, `1h02m`, `2d03h`. */
export function durationText(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${pad(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${pad(Math.floor(s / 3600) % 24)}h`;
}

/** How long the job ran (or has been running). */
export function jobDuration(job: Job, now = Date.now()): string {
  if (!job.createdAt) return '–';
  const end = job.endedAt ? timestampDate(job.endedAt).getTime() : now;
  return durationText(end - timestampDate(job.createdAt).getTime());
}

/** `epoch 3 │ Accuracy 91.20% │ Train loss 0.2340 │ +1 custom` */
export function epochLine(epoch: EpochRecord, metrics: JobMetrics): string {
  const line = metrics.line(epoch.metrics);
  return line ? `epoch ${epoch.epoch} │ ${line}` : `epoch ${epoch.epoch}`;
}
