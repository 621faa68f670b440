// The store's outbox seen as the bridge's `MlflowOutbox`, and the messages between the sidecar's main
// thread and its MLflow sync thread (see mlflow-mirror.ts for why there are two threads).

// The light entry: the main thread imports this module too, and needs none of the client or worker.
import type {
  MlflowConfig,
  MlflowJobMirror,
  MlflowOutbox,
  MlflowRequestOutcome,
  MlflowSyncStatus,
  NewOutboxItem,
  OutboxItem,
} from '@training-callbacks/mlflow-bridge';
import { toJsonNumber } from '@training-callbacks/mlflow-bridge/core';
import { isSystemMetric } from '@training-callbacks/proto';
import type {
  OutboxReaderPlan,
  OutboxReads,
  OutboxStatus,
  Store,
  StoredOutboxItem,
} from '@training-callbacks/store';
import type { LogFields } from './logging.ts';
import { mlflowMetricName } from './mlflow-items.ts';

/** Metric points one drain step folds into log-batch calls; a peek resolves no more block points. */
export const MAX_POINTS_PER_STEP = 10_000;

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

/** A stored entry as the bridge's item: batch-block references become `batch_metrics` payloads here. */
function toBridgeItem(item: StoredOutboxItem): OutboxItem {
  const base = {
    id: item.id,
    jobId: item.jobId,
    createdAtMs: item.createdAtMs,
    attempts: item.attempts,
    nextAttemptAtMs: item.nextAttemptAtMs,
    lastError: item.lastError,
    parkedError: item.parkedError,
  };
  if (item.blockId !== undefined) {
    const block = item.block;
    return {
      ...base,
      kind: 'batch_metrics',
      payload: block
        ? {
            epoch: block.epoch,
            names: block.names.map(mlflowBatchKey),
            steps: Array.from(block.steps, Number),
            values: Array.from(block.values, toJsonNumber),
            timestampMs: block.receivedAtMs,
          }
        : // The block is gone (cannot happen while the job exists): nothing to send.
          { epoch: 0, names: [], steps: [], values: [], timestampMs: item.createdAtMs },
    };
  }
  return { ...base, ...({ kind: item.kind, payload: item.payload } as NewOutboxItem) };
}

/** The outbox methods that only read: the sync thread runs them on a connection of its own. */
export type OutboxReadMethods = Pick<
  MlflowOutbox,
  'dueJobs' | 'peek' | 'nextDueAtMs' | 'getMirror' | 'syncStatus'
>;

/** The outbox's reads (of the store, or of an outbox reader) through the bridge's interface. */
export function outboxReads(reads: OutboxReads, maxBlockPoints = MAX_POINTS_PER_STEP): OutboxReadMethods {
  return {
    dueJobs: (nowMs, limit) => reads.outboxDueJobs(nowMs, limit),
    async peek(jobId, limit) {
      return (await reads.peekOutbox(jobId, limit, maxBlockPoints)).map(toBridgeItem);
    },
    nextDueAtMs: () => reads.outboxNextDueAtMs(),
    getMirror: (jobId): Promise<MlflowJobMirror | undefined> => reads.getMirrorState(jobId),
    async syncStatus(jobId, nowMs) {
      return syncStatusOf((await reads.outboxStatus([jobId])).get(jobId), nowMs);
    },
  };
}

/** The store's outbox table through the bridge's interface (no SQL here: the store owns it). */
export function storeOutbox(store: Store, maxBlockPoints = MAX_POINTS_PER_STEP): MlflowOutbox {
  return {
    ...outboxReads(store, maxBlockPoints),
    enqueue: (jobId, items, nowMs) => store.enqueueOutbox(jobId, items, nowMs),
    complete: (ids) => store.completeOutbox(ids),
    reschedule: (id, update) => store.rescheduleOutboxItem(id, update),
    park: (id, error) => store.parkOutboxItem(id, error),
    retryNow: (jobId, nowMs) => store.retryOutboxNow(jobId, nowMs),
    saveMirror: (jobId, mirror) => store.saveMirrorState(jobId, mirror),
  };
}

export function syncStatusOf(s: OutboxStatus | undefined, nowMs: number): MlflowSyncStatus {
  return {
    pendingItems: s?.pendingItems ?? 0,
    oldestPendingAgeSeconds:
      s?.oldestCreatedAtMs === undefined ? 0 : Math.max(0, (nowMs - s.oldestCreatedAtMs) / 1000),
    parkedError: s?.parkedError ?? '',
    lastError: s?.lastError ?? '',
    nextAttemptAtMs: s?.nextAttemptAtMs,
  };
}

/** The outbox methods that write: the sync thread asks the main thread (the one writer) to run them. */
export const OUTBOX_WRITES = ['enqueue', 'complete', 'reschedule', 'park', 'retryNow', 'saveMirror'] as const;
export type OutboxWrite = (typeof OUTBOX_WRITES)[number];

/** What the sync thread is started with (structured-cloned). */
export interface SyncThreadData {
  dbPath: string;
  /** The store's outbox queries, compiled by the main thread's store for the thread's outbox reader. */
  readerPlan: OutboxReaderPlan;
  config: MlflowConfig;
  retryHorizonMs: number;
  maxBackoffMs: number;
  requestConcurrency: number;
}

/** Main thread → sync thread. */
export type ToSyncThread =
  | { type: 'notify' }
  | { type: 'stop' }
  | { type: 'result'; id: number; value?: unknown; error?: string };

/** Sync thread → main thread. */
export type FromSyncThread =
  | { type: 'ready' }
  | { type: 'stopped' }
  | { type: 'log'; error: boolean; line: string; fields?: LogFields }
  | { type: 'write'; id: number; method: OutboxWrite; args: unknown[] }
  /** MLflow requests since the last report ([outcome, seconds]), for the main thread's /metrics. */
  | { type: 'requests'; observations: Array<[MlflowRequestOutcome, number]> };

/** The writes of `outbox` as the main thread runs them for the sync thread. */
export function runOutboxWrite(outbox: MlflowOutbox, method: OutboxWrite, args: unknown[]): Promise<unknown> {
  const fn = outbox[method] as (...a: unknown[]) => Promise<unknown>;
  return fn.apply(outbox, args);
}
