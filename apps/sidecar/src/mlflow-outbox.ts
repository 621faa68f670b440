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
import type { OutboxStatus, Store, StoredOutboxItem } from '@training-callbacks/store';
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

/**
 * The store's outbox methods the sync worker uses. The sync thread has no database connection: it asks
 * the main thread to run each of them on its store (see mlflow-mirror.ts), reads and writes alike.
 */
export const OUTBOX_CALLS = [
  'outboxDueJobs',
  'peekOutbox',
  'outboxNextDueAtMs',
  'outboxStatus',
  'getMirrorState',
  'enqueueOutbox',
  'completeOutbox',
  'rescheduleOutboxItem',
  'parkOutboxItem',
  'retryOutboxNow',
  'saveMirrorState',
] as const;
export type OutboxCall = (typeof OUTBOX_CALLS)[number];
/** The store as the sync worker uses it: the store itself, or the sync thread's calls to it. */
export type OutboxCalls = Pick<Store, OutboxCall>;

/**
 * The store's outbox through the bridge's interface (no SQL here: the store owns it). Stored entries
 * become bridge items here, so in the sync thread the payloads are built there, not on the main thread.
 */
export function storeOutbox(store: OutboxCalls, maxBlockPoints = MAX_POINTS_PER_STEP): MlflowOutbox {
  return {
    dueJobs: (nowMs, limit) => store.outboxDueJobs(nowMs, limit),
    async peek(jobId, limit) {
      return (await store.peekOutbox(jobId, limit, maxBlockPoints)).map(toBridgeItem);
    },
    nextDueAtMs: () => store.outboxNextDueAtMs(),
    getMirror: (jobId): Promise<MlflowJobMirror | undefined> => store.getMirrorState(jobId),
    async syncStatus(jobId, nowMs) {
      return syncStatusOf((await store.outboxStatus([jobId])).get(jobId), nowMs);
    },
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

/** What the sync thread is started with (structured-cloned). */
export interface SyncThreadData {
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
  /** Run `method` of the store with `args`; the answer comes back as a `result` of the same id. */
  | { type: 'call'; id: number; method: OutboxCall; args: unknown[] }
  /** MLflow requests since the last report ([outcome, seconds]), for the main thread's /metrics. */
  | { type: 'requests'; observations: Array<[MlflowRequestOutcome, number]> };

/** Runs a sync thread's call on the main thread's store. */
export function runOutboxCall(store: OutboxCalls, method: OutboxCall, args: unknown[]): Promise<unknown> {
  if (!OUTBOX_CALLS.includes(method))
    return Promise.reject(new Error(`not an outbox call: ${String(method)}`));
  const fn = store[method] as (...a: unknown[]) => Promise<unknown>;
  return fn.apply(store, args);
}
