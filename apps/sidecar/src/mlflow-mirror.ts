// Mirroring into MLflow: the store's outbox seen as the bridge's `MlflowOutbox`, plus the client and
// sync worker the sidecar runs when MLFLOW_TRACKING_URI is set. The RPC handlers only append outbox
// entries in their own transactions (see service.ts) and nudge the worker after the commit; nothing a
// trainer waits for ever talks to MLflow.
import {
  createMlflowClient,
  createSyncWorker,
  type MlflowClient,
  type MlflowConfig,
  type MlflowJobMirror,
  type MlflowOutbox,
  type MlflowSyncStatus,
  type NewOutboxItem,
  type OutboxItem,
  type SyncEvent,
  type SyncWorker,
  toJsonNumber,
} from '@training-callbacks/mlflow-bridge';
import type { OutboxStatus, Store, StoredOutboxItem } from '@training-callbacks/store';

/** Metric points one drain step folds into log-batch calls; a peek resolves no more block points. */
const MAX_POINTS_PER_STEP = 10_000;

/**
 * Prefix of batch-level metric keys in MLflow. Epoch metrics use step = epoch and batch metrics
 * step = global step; sharing one key would mix both axes in one history (the catalog normalises a
 * batch `loss` to `train_loss`, an epoch metric too), so batch points get their own keys.
 */
export const BATCH_KEY_PREFIX = 'batch/';

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
            names: block.names.map((n) => BATCH_KEY_PREFIX + n),
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

/** The store's outbox table through the bridge's interface (no SQL here: the store owns it). */
export function storeOutbox(store: Store, maxBlockPoints = MAX_POINTS_PER_STEP): MlflowOutbox {
  return {
    enqueue: (jobId, items, nowMs) => store.enqueueOutbox(jobId, items, nowMs),
    dueJobs: (nowMs, limit) => store.outboxDueJobs(nowMs, limit),
    async peek(jobId, limit) {
      return (await store.peekOutbox(jobId, limit, maxBlockPoints)).map(toBridgeItem);
    },
    complete: (ids) => store.completeOutbox(ids),
    reschedule: (id, update) => store.rescheduleOutboxItem(id, update),
    park: (id, error) => store.parkOutboxItem(id, error),
    unpark: (jobId, nowMs) => store.unparkOutbox(jobId, nowMs),
    nextDueAtMs: () => store.outboxNextDueAtMs(),
    getMirror: (jobId): Promise<MlflowJobMirror | undefined> => store.getMirrorState(jobId),
    saveMirror: (jobId, mirror) => store.saveMirrorState(jobId, mirror),
    async syncStatus(jobId, nowMs) {
      return syncStatusOf((await store.outboxStatus([jobId])).get(jobId), nowMs);
    },
  };
}

function syncStatusOf(s: OutboxStatus | undefined, nowMs: number): MlflowSyncStatus {
  return {
    pendingItems: s?.pendingItems ?? 0,
    oldestPendingAgeSeconds:
      s?.oldestCreatedAtMs === undefined ? 0 : Math.max(0, (nowMs - s.oldestCreatedAtMs) / 1000),
    parkedError: s?.parkedError ?? '',
    lastError: s?.lastError ?? '',
    nextAttemptAtMs: s?.nextAttemptAtMs,
  };
}

/** The proto's MlflowSync fields of a job. */
export interface JobSync {
  enabled: boolean;
  inSync: boolean;
  pendingItems: bigint;
  oldestPendingAgeSeconds: number;
  parkedError: string;
}

/** What the handlers see of the mirror. */
export interface Mirror {
  /** Wakes the sync worker after a commit that wrote outbox entries. */
  notify(): void;
  /** MlflowSync of each job (jobs with nothing pending are in sync). */
  sync(jobIds: readonly string[]): Promise<Map<string, JobSync>>;
}

export interface MirrorOptions {
  config: MlflowConfig;
  store: Store;
  /** How long a failing item is retried from its receipt before it is parked. */
  retryHorizonMs: number;
  /** Longest wait between two attempts. */
  maxBackoffMs: number;
  /** Progress lines (one per outage and recovery, not one per retry). */
  log: (line: string) => void;
  /** Parked errors: what stopped and what to do. */
  logError: (line: string) => void;
}

/** The running mirror: client, worker, and the handlers' view. */
export interface RunningMirror extends Mirror {
  readonly client: MlflowClient;
  readonly worker: SyncWorker;
  /** Stops the worker (waiting at most `graceMs` for a request in flight), then the client. */
  stop(graceMs: number): Promise<void>;
}

/** Debounce of `notify()`: folds the items of many fast RPCs into one drain (see worker `notifyDelayMs`). */
const NOTIFY_DELAY_MS = 25;

export async function startMirror(options: MirrorOptions): Promise<RunningMirror> {
  const { store, log, logError } = options;
  const client = createMlflowClient(options.config);
  const outbox = storeOutbox(store);
  const failing = new Set<string>();
  const onEvent = (event: SyncEvent) => {
    switch (event.type) {
      case 'retry':
        if (!failing.has(event.jobId)) {
          failing.add(event.jobId);
          log(
            `[${event.jobId}] MLflow: ${event.error} — retrying (every item stays in the outbox; training is not affected)`,
          );
        }
        break;
      case 'delivered':
        if (failing.delete(event.jobId)) log(`[${event.jobId}] MLflow: reachable again, catching up`);
        break;
      case 'parked':
        failing.delete(event.jobId);
        logError(
          `[${event.jobId}] MLflow sync STOPPED for this job: ${event.error}\n` +
            `  Fix the cause, then restart the sidecar: parked items are retried at start. Nothing is lost; ` +
            `GetJob shows mlflow_sync.parked_error until then.`,
        );
        break;
      case 'warning':
        log(`[${event.jobId || 'mlflow'}] MLflow: ${event.message}`);
        break;
    }
  };
  const worker = createSyncWorker({
    client,
    outbox,
    retryHorizonMs: options.retryHorizonMs,
    backoff: { maxMs: options.maxBackoffMs },
    maxRetryAfterMs: Math.max(options.maxBackoffMs, 1000),
    notifyDelayMs: NOTIFY_DELAY_MS,
    maxPointsPerStep: MAX_POINTS_PER_STEP,
    // Two log-batch requests in flight: the server parses one while it commits the other.
    requestConcurrency: 2,
    onEvent,
  });
  // Parked items get another chance at every start (the operator restarts after fixing the cause).
  const unparked = await store.unparkOutbox(undefined, Date.now());
  if (unparked > 0) log(`MLflow: retrying ${unparked} parked item(s) from before the restart`);
  worker.start();
  return {
    client,
    worker,
    notify: () => worker.notify(),
    async sync(jobIds) {
      const now = Date.now();
      const statuses = await store.outboxStatus(jobIds);
      const out = new Map<string, JobSync>();
      for (const jobId of jobIds) {
        const s = syncStatusOf(statuses.get(jobId), now);
        out.set(jobId, {
          enabled: true,
          inSync: s.pendingItems === 0 && s.parkedError === '',
          pendingItems: BigInt(s.pendingItems),
          oldestPendingAgeSeconds: s.oldestPendingAgeSeconds,
          parkedError: s.parkedError,
        });
      }
      return out;
    },
    async stop(graceMs) {
      let timer: NodeJS.Timeout | undefined;
      const stopped = await Promise.race([
        worker.stop().then(() => true),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(false), graceMs);
        }),
      ]);
      clearTimeout(timer);
      // A request still in flight (MLflow not answering) is abandoned: its item stays in the outbox
      // and is sent again after the restart (MLflow drops the exact duplicate points).
      if (stopped) await client.close();
      else void client.close().catch(() => undefined);
    },
  };
}
