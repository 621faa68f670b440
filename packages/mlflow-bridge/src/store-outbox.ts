// The store's outbox seen as the bridge's `MlflowOutbox`, and the messages between the sidecar's main
// thread and its MLflow sync thread (see mirror.ts for why there are two threads).

// The main thread imports this module too: only types of the client and the worker, no code.
import type { Store, StoredOutboxItem } from '@training-callbacks/store';
import { encodeNonFinite } from '@training-callbacks/store/number-codec';
import type { MlflowRequestOutcome } from './client.ts';
import type { MlflowConfig } from './config.ts';
import { mlflowBatchKey } from './mirror-items.ts';
import type { MlflowJobMirror, MlflowOutbox, NewOutboxItem, OutboxItem } from './outbox.ts';
import type { MirrorLogFields } from './sync-log.ts';

/** Metric points one drain step folds into log-batch calls; a peek resolves no more block points. */
export const MAX_POINTS_PER_STEP = 10_000;

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
            values: Array.from(block.values, encodeNonFinite),
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
 * the main thread to run each of them on its store (see mirror.ts), reads and writes alike.
 */
export const OUTBOX_CALLS = [
  'claimOutboxJobs',
  'renewOutboxClaims',
  'releaseOutboxClaims',
  'releaseIdleOutboxClaims',
  'peekOutbox',
  'outboxNextDueAtMs',
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

/** How a sidecar claims the jobs whose outbox it drains. */
export interface ClaimOptions {
  /** This sidecar's instance id (the same across restarts of its sync thread). */
  owner: string;
  /** How long a claim holds unless renewed: another sidecar takes the job over after it. */
  leaseMs: number;
  now?: () => number;
}

/** The store's outbox as the bridge's, drained only under claims; see {@link claimingOutbox}. */
export interface ClaimingOutbox {
  outbox: MlflowOutbox;
  /** The jobs this sidecar holds now. */
  held(): ReadonlySet<string>;
  /** Renews every claim held (call it well within the lease: a request may outlast it); drops those lost. */
  renew(): Promise<void>;
  /** Gives up every claim (at a stop), so another sidecar takes the jobs over at once. */
  releaseAll(): Promise<void>;
}

/**
 * The store's outbox through the bridge's interface (no SQL here: the store owns it), for sidecars
 * that share a database: the worker drains a job only while this sidecar holds the job's claim.
 * `dueJobs` claims the jobs it returns (and gives up those it held that have nothing left to send); every
 * drain step (`peek`) renews the job's claim first and finds nothing to send once the claim is lost,
 * so a sidecar that stalled past its lease stops after the request in flight; a job whose outbox ran
 * empty or stopped at a parked entry is released.
 * Stored entries become bridge items here: in the sync thread, so block decoding stays off the main
 * thread.
 */
export function claimingOutbox(
  store: OutboxCalls,
  claims: ClaimOptions,
  maxBlockPoints = MAX_POINTS_PER_STEP,
): ClaimingOutbox {
  const now = claims.now ?? Date.now;
  const terms = () => ({ owner: claims.owner, nowMs: now(), leaseMs: claims.leaseMs });
  const held = new Set<string>();
  const release = async (jobId: string) => {
    held.delete(jobId);
    await store.releaseOutboxClaims(claims.owner, [jobId]);
  };
  const outbox: MlflowOutbox = {
    async dueJobs(nowMs, limit) {
      const jobs = await store.claimOutboxJobs({ ...terms(), nowMs }, limit);
      // The worker asks between drain passes. Of the jobs held but not due now, those with nothing
      // left to send (drained to the end in a pass that stopped before its last peek, or parked)
      // are given up; those waiting out a backoff stay this sidecar's.
      const stale = [...held].filter((jobId) => !jobs.includes(jobId));
      for (const jobId of jobs) held.add(jobId);
      if (stale.length > 0) {
        for (const jobId of await store.releaseIdleOutboxClaims(claims.owner, stale)) held.delete(jobId);
      }
      return jobs;
    },
    async peek(jobId, limit) {
      if (!held.has(jobId) || !(await store.renewOutboxClaims(terms(), [jobId])).includes(jobId)) {
        held.delete(jobId);
        return [];
      }
      const items = await store.peekOutbox(jobId, limit, maxBlockPoints);
      if (items.length === 0 || items[0]!.parkedError !== null) await release(jobId);
      return items.map(toBridgeItem);
    },
    nextDueAtMs: () => store.outboxNextDueAtMs({ owner: claims.owner, nowMs: now() }),
    getMirror: (jobId): Promise<MlflowJobMirror | undefined> => store.getMirrorState(jobId),
    enqueue: (jobId, items, nowMs) => store.enqueueOutbox(jobId, items, nowMs),
    complete: (ids) => store.completeOutbox(ids),
    reschedule: (id, update) => store.rescheduleOutboxItem(id, update),
    park: (id, error) => store.parkOutboxItem(id, error),
    retryNow: (jobId, nowMs) => store.retryOutboxNow(jobId, nowMs),
    saveMirror: (jobId, mirror) => store.saveMirrorState(jobId, mirror),
  };
  return {
    outbox,
    held: () => held,
    async renew() {
      if (held.size === 0) return;
      const asked = [...held];
      const kept = new Set(await store.renewOutboxClaims(terms(), asked));
      for (const jobId of asked) if (!kept.has(jobId)) held.delete(jobId);
    },
    async releaseAll() {
      held.clear();
      await store.releaseOutboxClaims(claims.owner);
    },
  };
}

/** What the sync thread is started with (structured-cloned). */
export interface SyncThreadData {
  /** This sidecar's instance id, the owner of its claims. */
  owner: string;
  claimLeaseMs: number;
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
  | { type: 'log'; error: boolean; line: string; fields?: MirrorLogFields }
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
