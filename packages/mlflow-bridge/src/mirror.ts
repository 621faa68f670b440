// Mirroring into MLflow. The sidecar's RPC handlers only append outbox entries in their own transactions
// and call `notify()` after the commit; nothing a trainer waits for ever talks to MLflow.
// The sync worker runs in a thread of its own (sync-thread.ts) so that its reads, request
// building and HTTP never run between two RPCs here: with MLflow healthy, a trainer sees the same
// latency as with MLflow down. The thread has no connection of its own: this thread runs its outbox
// reads and writes on the store (a few per log-batch step, not one per point).
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { MlflowSync } from '@training-callbacks/proto';
import type { OutboxStatus, Store } from '@training-callbacks/store';
import type { MlflowRequestOutcome } from './client.ts';
import type { MlflowConfig } from './config.ts';
import {
  type FromSyncThread,
  runOutboxCall,
  type SyncThreadData,
  type ToSyncThread,
} from './store-outbox.ts';
import type { MirrorLog } from './sync-log.ts';

/** A job's MLflow sync status: the proto's MlflowSync, the one shape the sidecar answers and shows. */
export type JobSync = Omit<MlflowSync, '$typeName' | '$unknown'>;

/**
 * A job's sync status from its outbox as the store reports it (`undefined`: no entries, in sync): the
 * one conversion between the database's shape and the wire's.
 */
export function mlflowSyncOf(status: OutboxStatus | undefined, nowMs: number): JobSync {
  const pendingItems = status?.pendingItems ?? 0;
  const parkedError = status?.parkedError ?? '';
  const oldest = status?.oldestCreatedAtMs;
  return {
    enabled: true,
    inSync: pendingItems === 0 && parkedError === '',
    pendingItems: BigInt(pendingItems),
    oldestPendingAgeSeconds: oldest === undefined ? 0 : Math.max(0, (nowMs - oldest) / 1000),
    parkedError,
  };
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
  /** The store: the sync thread's outbox reads and writes run on it, in this thread. */
  store: Store;
  /**
   * No other sidecar uses the database (SQLite: this one holds the file's lock): claims left by an
   * earlier run of this sidecar (killed) are stale and released at start instead of waiting out
   * their lease.
   */
  exclusiveDatabase?: boolean;
  /**
   * How long this sidecar's claim on a job's outbox holds unless renewed (default 30 s): when it
   * dies, another sidecar sharing the database takes its jobs over after at most this long.
   */
  claimLeaseMs?: number;
  /** How long a failing item is retried from its receipt before it is parked. */
  retryHorizonMs: number;
  /** Longest wait between two attempts. */
  maxBackoffMs: number;
  /** Log-batch requests in flight (default 2). */
  requestConcurrency?: number;
  /** Progress lines (one per outage and recovery, not one per retry). */
  log: MirrorLog;
  /** Parked errors: what stopped and what to do. */
  logError: MirrorLog;
  /** The sync thread's MLflow requests ([outcome, seconds]), reported about once a second. */
  onMlflowRequests?: (observations: ReadonlyArray<readonly [MlflowRequestOutcome, number]>) => void;
}

/** What a shutdown drain left in the outbox. */
export interface DrainResult {
  /** Entries that could have been sent but were not delivered by the deadline. */
  left: number;
  /** Entries of parked jobs (they wait for RetryMlflowSync or the next start, not for the drain). */
  parked: number;
}

/** The running mirror: the handlers' view, and a way to stop it. */
export interface RunningMirror extends Mirror {
  /**
   * Lets the sync thread deliver what it can until `deadlineMs` (epoch ms): resolves as soon as
   * nothing but parked jobs' entries is left, or at the deadline with what is left.
   */
  drain(deadlineMs: number): Promise<DrainResult>;
  /** Stops the sync thread (waiting at most `graceMs` for a request in flight). */
  stop(graceMs: number): Promise<void>;
}

/** Default of {@link MirrorOptions.claimLeaseMs}. */
export const DEFAULT_CLAIM_LEASE_MS = 30_000;

/** Wait before a sync thread that died is started again. */
const RESTART_DELAY_MS = 5000;

/** How often a shutdown drain looks at the outbox. */
const DRAIN_POLL_MS = 100;

/** Debounce of `notify()`: folds the items of many fast RPCs into one drain (see worker `notifyDelayMs`). */
const NOTIFY_DELAY_MS = 25;

/** The sync thread's module, next to this one (`.ts` when run from source, `.js` when built). */
const THREAD_URL = new URL(`./sync-thread${extname(fileURLToPath(import.meta.url))}`, import.meta.url);

export async function startMirror(options: MirrorOptions): Promise<RunningMirror> {
  const { store, log, logError } = options;
  // Parked and waiting items get another chance at every start (the operator may have restarted
  // after fixing the cause).
  const retried = await store.retryOutboxNow(undefined, Date.now());
  if (retried > 0) {
    log(`MLflow: retrying ${retried} parked or waiting item(s) from before the restart`, {
      event: 'mlflow_retry_at_start',
      items: retried,
    });
  }
  if (options.exclusiveDatabase) await store.releaseOutboxClaims(undefined);
  const workerData: SyncThreadData = {
    // One id per sidecar run (a restarted sync thread keeps it, and so its claims): readable in
    // outbox_claim.claimed_by.
    owner: `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    claimLeaseMs: options.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS,
    config: options.config,
    retryHorizonMs: options.retryHorizonMs,
    maxBackoffMs: options.maxBackoffMs,
    requestConcurrency: options.requestConcurrency ?? 2,
  };
  let stopping = false;
  let stopped: (() => void) | undefined;

  /** Starts the sync thread; resolves once it is ready, rejects with its error if it cannot start. */
  function spawn(): Promise<Worker> {
    const thread = new Worker(THREAD_URL, { workerData, name: 'mlflow-sync' });
    return new Promise<Worker>((resolve, reject) => {
      let started = false;
      thread.on('message', (message: FromSyncThread) => {
        switch (message.type) {
          case 'ready':
            started = true;
            resolve(thread);
            break;
          case 'stopped':
            stopped?.();
            break;
          case 'log':
            (message.error ? logError : log)(message.line, message.fields);
            break;
          case 'requests':
            options.onMlflowRequests?.(message.observations);
            break;
          case 'call':
            runOutboxCall(store, message.method, message.args).then(
              (value) => thread.postMessage({ type: 'result', id: message.id, value } satisfies ToSyncThread),
              (error: unknown) =>
                thread.postMessage({
                  type: 'result',
                  id: message.id,
                  error: (error as Error)?.message ?? String(error),
                } satisfies ToSyncThread),
            );
            break;
        }
      });
      thread.on('error', (error) => {
        if (!started) reject(error);
        else
          logError(`MLflow sync thread failed: ${error.stack ?? error.message}`, {
            event: 'mlflow_thread_failed',
          });
      });
      thread.once('exit', (code) => {
        if (!started) {
          reject(new Error(`the MLflow sync thread exited with code ${code} while starting`));
        } else if (!stopping) {
          // Nothing is lost (the outbox is durable); mirroring resumes where it stopped.
          logError(
            `MLflow sync thread exited with code ${code}; restarting it in ${RESTART_DELAY_MS / 1000} s`,
            { event: 'mlflow_thread_exited', code },
          );
          setTimeout(() => {
            if (stopping) return;
            spawn().then(
              (next) => {
                current = next;
              },
              (error: Error) =>
                logError(`MLflow sync thread could not restart: ${error.message}`, {
                  event: 'mlflow_thread_failed',
                }),
            );
          }, RESTART_DELAY_MS).unref();
        }
      });
    });
  }
  let current = await spawn();

  let notifyTimer: NodeJS.Timeout | undefined;
  return {
    notify() {
      notifyTimer ??= setTimeout(() => {
        notifyTimer = undefined;
        current.postMessage({ type: 'notify' } satisfies ToSyncThread);
      }, NOTIFY_DELAY_MS).unref();
    },
    async sync(jobIds) {
      const now = Date.now();
      const statuses = await store.outboxStatus(jobIds);
      return new Map(jobIds.map((jobId) => [jobId, mlflowSyncOf(statuses.get(jobId), now)]));
    },
    async drain(deadlineMs) {
      clearTimeout(notifyTimer);
      notifyTimer = undefined;
      current.postMessage({ type: 'notify' } satisfies ToSyncThread);
      for (;;) {
        const counts = await store.operationalCounts();
        const result = {
          left: counts.outboxPending - counts.outboxParkedItems,
          parked: counts.outboxParkedItems,
        };
        if (result.left === 0 || Date.now() >= deadlineMs) return result;
        await new Promise((resolve) =>
          setTimeout(resolve, Math.min(DRAIN_POLL_MS, Math.max(0, deadlineMs - Date.now()))),
        );
      }
    },
    async stop(graceMs) {
      stopping = true;
      clearTimeout(notifyTimer);
      let timer: NodeJS.Timeout | undefined;
      const thread = current;
      await Promise.race([
        new Promise<void>((resolve) => {
          stopped = resolve;
          thread.once('exit', () => resolve());
          thread.postMessage({ type: 'stop' } satisfies ToSyncThread);
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, graceMs);
        }),
      ]);
      clearTimeout(timer);
      // A request still in flight (MLflow not answering) is abandoned: its item stays in the outbox
      // and is sent again after the restart (MLflow drops the exact duplicate points).
      await thread.terminate();
    },
  };
}
