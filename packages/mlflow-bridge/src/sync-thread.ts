// The MLflow sync thread: the bridge's sync worker and HTTP client. Building and sending log-batch
// bodies (decoding stored blocks into MLflow's metrics, JSON, HTTP) happens here, so none of it runs
// between two of a trainer's RPCs on the main thread. The thread has no database connection: every
// outbox read and write (the due jobs, a peek, an item delivered, rescheduled or parked, a run's ids)
// is a call to the main thread, which runs it on its store — one connection pool, one dialect, and on
// SQLite the database's one writer (a second writer would make the RPCs' commits wait in SQLite's busy
// handler). The calls are few: one peek and one completion per log-batch step of up to
// MAX_POINTS_PER_STEP points, not one per point.
//
// Import nothing of `@training-callbacks/store` here but types: loading MikroORM in this thread would
// cost some 17 MB of memory.
import { readlinkSync } from 'node:fs';
import { constants, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { createMlflowClient, type MlflowRequestOutcome } from './client.ts';
import {
  claimingOutbox,
  type FromSyncThread,
  MAX_POINTS_PER_STEP,
  OUTBOX_CALLS,
  type OutboxCall,
  type OutboxCalls,
  type SyncThreadData,
  type ToSyncThread,
} from './store-outbox.ts';
import { type MirrorLogFields, RUN_GONE_HINT, syncEventLogger } from './sync-log.ts';
import { createSyncWorker } from './worker.ts';

/**
 * Runs this thread below the RPC thread's CPU priority (Linux: nice is per thread, and a thread may
 * always lower its own). When the sidecar's cores are busy, a trainer's calls go first and the mirror
 * catches up in the idle time; elsewhere, or if refused, the thread keeps the normal priority.
 */
function lowerThreadPriority(): void {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, constants.priority.PRIORITY_BELOW_NORMAL);
  } catch {}
}
lowerThreadPriority();

const port = parentPort;
if (!port) throw new Error('sync-thread.ts runs as a worker thread (started by mirror.ts)');
const data = workerData as SyncThreadData;
const post = (message: FromSyncThread) => port.postMessage(message);
const log = (line: string, fields: MirrorLogFields | undefined, error = false) =>
  post({ type: 'log', error, line, ...(fields && { fields }) });

const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
let nextId = 1;
/** Runs `method` of the main thread's store; resolves with its answer (structured-cloned). */
function call(method: OutboxCall, args: unknown[]): Promise<unknown> {
  const id = nextId++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    post({ type: 'call', id, method, args });
  });
}

const storeCalls = Object.fromEntries(
  OUTBOX_CALLS.map((method) => [method, (...args: unknown[]) => call(method, args)]),
) as unknown as OutboxCalls;
// Sidecars sharing the database drain each job's outbox one at a time: under a claim with a lease,
// renewed at every drain step and, for a request that takes long (an artifact upload), every third of
// the lease.
const claims = claimingOutbox(
  storeCalls,
  { owner: data.owner, leaseMs: data.claimLeaseMs },
  MAX_POINTS_PER_STEP,
);
const renewal = setInterval(
  () => {
    claims
      .renew()
      .catch((error: Error) =>
        log(
          `MLflow: could not renew the outbox claims: ${error.message}`,
          { event: 'mlflow_claims_renewal' },
          true,
        ),
      );
  },
  Math.max(10, Math.floor(data.claimLeaseMs / 3)),
);

// Request outcomes go to the main thread's /metrics in one message a second at most, not one per request.
const REQUESTS_REPORT_MS = 1000;
let observations: Array<[MlflowRequestOutcome, number]> = [];
let reportTimer: NodeJS.Timeout | undefined;
const reportRequests = () => {
  clearTimeout(reportTimer);
  reportTimer = undefined;
  if (observations.length === 0) return;
  post({ type: 'requests', observations });
  observations = [];
};
const client = createMlflowClient(data.config, {
  onRequest(outcome, seconds) {
    observations.push([outcome, seconds]);
    reportTimer ??= setTimeout(reportRequests, REQUESTS_REPORT_MS).unref();
  },
});
const worker = createSyncWorker({
  client,
  outbox: claims.outbox,
  retryHorizonMs: data.retryHorizonMs,
  backoff: { maxMs: data.maxBackoffMs },
  maxRetryAfterMs: Math.max(data.maxBackoffMs, 1000),
  // The main thread already folds the notifications of many fast RPCs into one message.
  notifyDelayMs: 0,
  maxPointsPerStep: MAX_POINTS_PER_STEP,
  // Two log-batch requests in flight by default: a server with several workers (MLflow's default is 4)
  // parses one while it commits the other. Against a one-worker server they only contend (≈ 15 % slower).
  requestConcurrency: data.requestConcurrency,
  runGoneHint: RUN_GONE_HINT,
  onEvent: syncEventLogger({
    log: (line, fields) => log(line, fields),
    logError: (line, fields) => log(line, fields, true),
  }),
});

port.on('message', (message: ToSyncThread) => {
  switch (message.type) {
    case 'notify':
      worker.notify();
      break;
    case 'result': {
      const call = pending.get(message.id);
      pending.delete(message.id);
      if (message.error === undefined) call?.resolve(message.value);
      else call?.reject(new Error(message.error));
      break;
    }
    case 'stop':
      void (async () => {
        await worker.stop();
        clearInterval(renewal);
        // Another sidecar may take this one's jobs over at once, not after the lease.
        await claims.releaseAll().catch(() => undefined);
        // Whatever was in flight and not confirmed stays in the outbox; MLflow drops the exact resend.
        await client.close().catch(() => undefined);
        reportRequests();
        post({ type: 'stopped' });
        port.close();
      })();
      break;
  }
});
worker.start();
post({ type: 'ready' });
