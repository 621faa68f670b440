// What every handler group shares: the store, the artifact files, the log, the MLflow mirror and the
// job-state cache. Built once per sidecar by `createHandlerContext`. No per-job lock: every rule about
// a job (running or ended, its end, its resume, its best epoch) is decided inside the store's
// transactions, so sidecars sharing one database agree (see job-states.ts for what the cache may do).
import type { ServiceHandlers } from '@training-callbacks/grpc-adapter';
import { MetricSources } from '@training-callbacks/mlflow-bridge/core';
import type { Mirror } from '@training-callbacks/mlflow-bridge/mirror';
import type { TrainingCallbacks } from '@training-callbacks/proto';
import type { JobRecord, OutboxItemInput, Store } from '@training-callbacks/store';
import type { ArtifactFiles } from '../artifacts.ts';
import { jobToProto } from '../convert.ts';
import type { LogFn } from '../logging.ts';
import { createSidecarMetrics, type SidecarMetrics } from '../metrics.ts';
import { createJobStates, type JobStates } from './job-states.ts';
import { createVerdicts, type Verdicts } from './verdicts.ts';

export type Methods = typeof TrainingCallbacks extends { method: infer M } ? M : never;

/** The handlers of some of the service's methods; the service spreads every group into one object. */
export type HandlerGroup<K extends keyof Methods> = Pick<ServiceHandlers<Methods>, K>;

export interface ServiceOptions {
  store: Store;
  artifacts: ArtifactFiles;
  /** The gRPC message limit (--max-message-bytes): list pages stay within it. Default 16 MiB. */
  maxMessageBytes?: number;
  /** Receives the human-readable per-epoch and per-job lines (with their fields for JSON logs). */
  log: LogFn;
  /** Lines about an operator's action (RetryMlflowSync), printed even when `log` is quiet; default `log`. */
  notice?: LogFn;
  /** MLflow mirroring; absent when MLflow is not configured (then no outbox entry is written). */
  mirror?: Mirror;
  /** Prometheus counters (ingested epochs and points, rejections); a private registry when omitted. */
  metrics?: SidecarMetrics;
  /** Watch streams send a heartbeat after this long without an event (default 15 s). */
  watchKeepaliveMs?: number;
  /** The trainer lease (--trainer-lease): a running job without a sign of life this long is lost. */
  trainerLeaseMs?: number;
  /** The kernel boot id trainers are compared with (default: this host's); '' turns process evidence off. */
  bootId?: string;
}

export interface HandlerContext {
  readonly store: Store;
  /** Bytes a list page may fill (the message limit, less room for the rest of the response). */
  readonly pageBytes: number;
  readonly artifacts: ArtifactFiles;
  readonly log: LogFn;
  readonly notice: LogFn;
  readonly mirror: Mirror | undefined;
  readonly metrics: SidecarMetrics;
  /** The trainer lease and the heartbeat interval clients are told (a sixth of the lease). */
  readonly lease: TrainerLease;
  readonly jobs: JobStates;
  /** Leases, the sweeper, the trainer process watch and revivals (verdicts.ts). */
  readonly verdicts: Verdicts;
  /** Watch streams send a heartbeat after this long without an event. */
  readonly watchKeepaliveMs: number;
  /** Outbox entries for a write, only when mirroring; the worker is nudged once the write committed. */
  mirrored(build: () => OutboxItemInput[]): { outbox?: OutboxItemInput[] };
  /** Wakes the MLflow worker after a commit that wrote outbox entries. */
  notify(): void;
  /** Which renames and unit changes are queued for recording in each job's MLflow run. */
  readonly metricSources: MetricSources;
  /** Job records → protos, with MlflowSync when mirroring. */
  jobsToProto(jobs: readonly JobRecord[]): Promise<ReturnType<typeof jobToProto>[]>;
}

/** How long a job may go without a sign of life, and how often clients heartbeat. */
export interface TrainerLease {
  readonly leaseMs: number;
  readonly heartbeatIntervalMs: number;
}

/** Beats per lease: five heartbeats in a row may be lost (a busy host, a short network blip). */
export const BEATS_PER_LEASE = 6;

/** The default lease (60 s): see docs/verdicts.md for why. */
export const DEFAULT_TRAINER_LEASE_MS = 60_000;

export function trainerLease(leaseMs = DEFAULT_TRAINER_LEASE_MS): TrainerLease {
  return { leaseMs, heartbeatIntervalMs: leaseMs / BEATS_PER_LEASE };
}

/** Room a list page leaves in the message for the response's other fields (the page token, tags). */
const PAGE_RESERVE_BYTES = 4096;

export function createHandlerContext(options: ServiceOptions): HandlerContext {
  const { store, mirror } = options;
  const jobs = createJobStates(store);
  const metrics = options.metrics ?? createSidecarMetrics();
  const lease = trainerLease(options.trainerLeaseMs);
  const notice = options.notice ?? options.log;
  const notify = () => mirror?.notify();
  return {
    store,
    pageBytes: (options.maxMessageBytes ?? 16 * 1024 * 1024) - PAGE_RESERVE_BYTES,
    artifacts: options.artifacts,
    log: options.log,
    notice,
    mirror,
    metrics,
    lease,
    watchKeepaliveMs: options.watchKeepaliveMs ?? 15_000,
    jobs,
    verdicts: createVerdicts(
      { store, jobs, lease, notice, metrics, mirror, notify },
      options.bootId === undefined ? {} : { bootId: options.bootId },
    ),
    mirrored: (build) => (mirror ? { outbox: build() } : {}),
    notify,
    metricSources: new MetricSources(),
    async jobsToProto(jobs) {
      const sync = mirror ? await mirror.sync(jobs.map((j) => j.jobId)) : undefined;
      return jobs.map((job) => jobToProto(job, sync?.get(job.jobId)));
    },
  };
}
